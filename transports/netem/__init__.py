"""Network emulation: a fault proxy for TCP, a UDP relay for WebRTC, fault types.

This layer imports nothing else of the package, so it can be used in front of any server."""
