"""prohmr.models."""
