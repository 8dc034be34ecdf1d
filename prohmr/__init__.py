"""prohmr: probabilistic 3D human mesh recovery.

The centre is ProHMR's conditional normalizing flow over SMPL body poses in the 6D rotation
representation. Sub-packages: ``geometry`` (rotations, cameras, Procrustes), ``body`` (body
models and joint conventions), ``flows`` (the conditional Glow), ``models``, ``fitting``,
``data``, ``evaluation``, ``rendering`` and ``visualization``.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "load_model"]


def __getattr__(name: str):
    # ``prohmr.load_model`` is the one entry point; importing it lazily keeps ``import prohmr``
    # light (no torch, smplx or nflows until a model is needed).
    if name == "load_model":
        from prohmr.models.loading import load_model

        return load_model
    raise AttributeError(f"module 'prohmr' has no attribute {name!r}")
