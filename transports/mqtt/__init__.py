"""mqtt transport."""
