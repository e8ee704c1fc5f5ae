"""The fan-out benchmark (``transport-lab bench --suite fanout``).

Transport Lab's ``/ws``, ``/sse`` and ``/poll`` and a few baselines — raw Starlette WebSocket
and sse-starlette broadcasts on the same uvicorn stack, a raw ``websockets`` broadcast, and
python-socketio's websocket transport — are each started as their own server process with
the same feed (:mod:`.serverside`), driven by the same load generator (:mod:`.loadgen`,
clients sharded over processes) and measured the same way (:mod:`.runner`).
"""
