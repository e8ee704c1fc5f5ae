"""Measurement engine: latency, wire bytes, faults, scenarios and results."""
