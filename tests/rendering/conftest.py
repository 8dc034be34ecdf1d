"""Fixtures for the rendering tests: a closed test mesh built from scratch.

``device`` and ``dtype`` come from ``tests/conftest.py``.
"""

from __future__ import annotations

import math

import pytest
import torch

def _icosahedron() -> tuple[torch.Tensor, torch.Tensor]:
    phi = (1 + math.sqrt(5)) / 2
    vertices = torch.tensor(
        [
            [-1, phi, 0], [1, phi, 0], [-1, -phi, 0], [1, -phi, 0],
            [0, -1, phi], [0, 1, phi], [0, -1, -phi], [0, 1, -phi],
            [phi, 0, -1], [phi, 0, 1], [-phi, 0, -1], [-phi, 0, 1],
        ],
        dtype=torch.float64,
    )  # fmt: skip
    faces = torch.tensor(
        [
            [0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
            [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
            [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
            [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1],
        ]
    )  # fmt: skip
    return vertices / vertices.norm(dim=-1, keepdim=True), faces


def icosphere(subdivisions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit icosphere ``(V, 3)`` float64 with outward (right-hand) winding, faces ``(F, 3)``."""
    vertices, faces = _icosahedron()
    for _ in range(subdivisions):
        points = [tuple(p) for p in vertices.tolist()]
        midpoint: dict[tuple[int, int], int] = {}

        def middle(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in midpoint:
                m = torch.tensor(points[a]) + torch.tensor(points[b])
                points.append(tuple((m / m.norm()).tolist()))
                midpoint[key] = len(points) - 1
            return midpoint[key]

        new_faces = []
        for a, b, c in faces.tolist():
            ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
            new_faces += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        vertices = torch.tensor(points, dtype=torch.float64)
        faces = torch.tensor(new_faces)
    return vertices, faces


@pytest.fixture(scope="session")
def sphere_mesh() -> tuple[torch.Tensor, torch.Tensor]:
    """Unit icosphere with 642 vertices and 1280 faces (float64)."""
    return icosphere(3)
