"""prohmr.evaluation."""
