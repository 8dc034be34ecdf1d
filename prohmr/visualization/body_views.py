"""Orthographic front / side / top views of a body mesh with its skeleton (matplotlib).

The mesh is drawn as depth-sorted, Lambert-shaded polygons (painter's algorithm), which is
exact for a closed mesh seen from outside and needs no renderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["VIEWS", "plot_body_views", "project_view"]

#: Each view: (horizontal axis, vertical axis, towards-viewer axis) as (index, sign).
#: SMPL bodies stand along +y and face +z. "front" looks at the face from +z (the subject's
#: left, +x, appears on the right); "side" looks from the subject's left (+x), so the face
#: points left; "top" looks down from +y with the face pointing up the page.
VIEWS: dict[str, tuple[tuple[int, float], tuple[int, float], tuple[int, float]]] = {
    "front": ((0, 1.0), (1, 1.0), (2, 1.0)),
    "side": ((2, -1.0), (1, 1.0), (0, 1.0)),
    "top": ((0, -1.0), (2, 1.0), (1, 1.0)),
}
_LIGHT = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
_MESH_RGB = np.array([0.72, 0.76, 0.86])
_AMBIENT = 0.35


def project_view(points: np.ndarray, view: str) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic projection of ``points (..., 3)`` for a named view.

    Arguments:
        points: 3D points in the body frame (y up, facing +z).
        view: one of :data:`VIEWS`.

    Returns:
        ``(xy (..., 2), depth (...))`` where larger depth is closer to the viewer.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {sorted(VIEWS)}, got {view!r}")
    (hi, hs), (vi, vs), (di, ds) = VIEWS[view]
    xy = np.stack([hs * points[..., hi], vs * points[..., vi]], axis=-1)
    return xy, ds * points[..., di]


def _draw_mesh(ax, vertices: np.ndarray, faces: np.ndarray, view: str) -> None:
    xy, depth = project_view(vertices, view)
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    normal_xy, normal_depth = project_view(normals, view)
    facing = np.concatenate([normal_xy, normal_depth[:, None]], axis=1)
    visible = facing[:, 2] > 0
    shade = _AMBIENT + (1 - _AMBIENT) * np.clip(facing @ _LIGHT, 0.0, 1.0)
    order = np.argsort(depth[faces].mean(axis=1))
    order = order[visible[order]]
    colors = np.clip(shade[order, None] * _MESH_RGB, 0, 1)
    ax.add_collection(
        PolyCollection(xy[faces[order]], facecolors=colors, edgecolors="none", zorder=1)
    )


def _draw_skeleton(ax, joints: np.ndarray, parents: Sequence[int], view: str) -> None:
    xy, _ = project_view(joints, view)
    segments = [(xy[p], xy[i]) for i, p in enumerate(parents) if p >= 0]
    ax.add_collection(LineCollection(segments, colors="tab:red", linewidths=1.5, zorder=2))
    ax.scatter(xy[:, 0], xy[:, 1], s=8, c="tab:red", zorder=3)


def plot_body_views(
    vertices: np.ndarray,
    faces: np.ndarray,
    joints: np.ndarray | None = None,
    parents: Sequence[int] | None = None,
    views: Sequence[str] = ("front", "side"),
    title: str | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Draw a body mesh (and optionally its skeleton) from several orthographic views.

    Arguments:
        vertices: ``(V, 3)`` mesh vertices in metres (y up, facing +z).
        faces: ``(F, 3)`` triangle indices.
        joints: optional ``(J, 3)`` joints drawn over the mesh.
        parents: parent index per joint (-1 for roots); needed with ``joints``.
        views: names from :data:`VIEWS`.
        title: figure title.
        save_path: if given, the figure is also written there as PNG.

    Returns:
        The matplotlib figure.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {faces.shape}")
    if joints is not None and parents is None:
        raise ValueError("parents are needed to draw joints as a skeleton")
    figure, axes = plt.subplots(1, len(views), figsize=(3.2 * len(views), 4.2), squeeze=False)
    for ax, view in zip(axes[0], views):
        _draw_mesh(ax, vertices, faces, view)
        if joints is not None:
            _draw_skeleton(ax, np.asarray(joints, dtype=np.float64), parents, view)
        xy, _ = project_view(vertices, view)
        low, high = xy.min(axis=0), xy.max(axis=0)
        centre, half = (low + high) / 2, (high - low).max() / 2 * 1.08
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_aspect("equal")
        ax.set_title(view, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    if save_path is not None:
        figure.savefig(save_path, dpi=110)
    return figure
