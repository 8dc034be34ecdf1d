"""prohmr.body."""
