"""Personal data: data subjects' keys, the master key that wraps them, and erasure."""
