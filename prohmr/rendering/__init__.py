"""Pure-PyTorch mesh rendering: a batched z-buffer rasteriser, Lambertian shading, overlays.

Conventions (camera looks down ``+z``, pixel centres at ``(j + 0.5, i + 0.5)``, background
depth 0, near-plane dropping) are documented in :mod:`prohmr.rendering.rasterizer`.
"""

from __future__ import annotations

from prohmr.rendering.rasterizer import (
    BACKGROUND_DEPTH,
    NEAR_PLANE,
    Fragments,
    rasterize,
)
from prohmr.rendering.shading import (
    DEFAULT_AMBIENT,
    DEFAULT_DIFFUSE,
    DEFAULT_LIGHT_DIRECTION,
    DEFAULT_MESH_COLOR,
    RenderOutput,
    face_normals,
    gather_face_values,
    overlay,
    render_mesh,
    vertex_normals,
)

__all__ = [
    "BACKGROUND_DEPTH",
    "NEAR_PLANE",
    "DEFAULT_AMBIENT",
    "DEFAULT_DIFFUSE",
    "DEFAULT_LIGHT_DIRECTION",
    "DEFAULT_MESH_COLOR",
    "Fragments",
    "RenderOutput",
    "face_normals",
    "gather_face_values",
    "overlay",
    "rasterize",
    "render_mesh",
    "vertex_normals",
]
