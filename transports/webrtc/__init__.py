"""WebRTC data-channel transport (aiortc): ``server.py``, ``peer.py``, ``client.py``, ``ice.py``.

See ``docs/webrtc.md`` for signalling, channel options and the local-lab ICE settings.
"""
