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
