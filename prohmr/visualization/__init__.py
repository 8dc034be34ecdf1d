"""prohmr.visualization."""
