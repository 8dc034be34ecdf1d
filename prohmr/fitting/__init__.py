"""prohmr.fitting."""
