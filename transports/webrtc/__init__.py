"""WebRTC data-channel transport (aiortc): ``server.py``, ``peer.py``, ``client.py``, ``ice.py``.

See ``docs/webrtc.md`` for signalling, channel options and the local-lab ICE settings.
"""

# The data channel both ends open and accept (``RTCDataChannel.label``); others are refused.
LABEL = "feed"
