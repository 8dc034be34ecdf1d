"""YAML configs for ``prohmr-train``; shipped as package data (``importlib.resources``)."""
