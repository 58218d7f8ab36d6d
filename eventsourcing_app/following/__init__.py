"""Follow the global log from a checkpoint: one loop for projections and the relay."""
