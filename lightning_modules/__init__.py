"""Lightning wrappers around :mod:`prohmr`: LightningModules, DataModules and the
``prohmr-train`` command. The :mod:`prohmr` library itself never imports Lightning."""
