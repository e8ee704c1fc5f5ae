"""webrtc transport."""
