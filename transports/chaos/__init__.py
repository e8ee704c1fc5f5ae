"""Experiments and the live fault lab: chaos scoreboards, heartbeat sweeps, reconnect
storms, the fault rig, the fault API behind the dashboard and the restarting supervisor."""
