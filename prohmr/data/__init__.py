"""prohmr.data."""
