"""WebSocket (RFC 6455): one text frame per message, protocol ping/pong heartbeats."""
