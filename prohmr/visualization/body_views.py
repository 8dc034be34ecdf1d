"""Orthographic front / side / top views of a body mesh with its skeleton (matplotlib).

The mesh is drawn as depth-sorted, Lambert-shaded polygons (painter's algorithm), which is
exact for a closed mesh seen from outside and needs no renderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from prohmr.visualization.figures import (
    PathLike,
    as_numpy,
    check_points,
    new_figure,
    save_figure,
)

__all__ = [
    "UP_AXES",
    "VIEWS",
    "check_views",
    "plot_body_views",
    "project_view",
    "set_view_limits",
    "to_body_frame",
    "window_half_size",
]

Up = Literal["y", "-y"]
#: ``up`` values: ``"y"`` for the body frame (y up, facing +z); ``"-y"`` for the camera frame
#: (y down, z forward, the subject facing the camera), turned into the body frame by a
#: half-turn about x, ``(x, y, z) -> (x, -y, -z)`` (a rotation, so left stays left).
UP_AXES: dict[str, tuple[float, float, float]] = {"y": (1.0, 1.0, 1.0), "-y": (1.0, -1.0, -1.0)}

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
#: Margin around plotted points, as a fraction of their extent.
_MARGIN = 0.08
#: Smallest window extent (metres or pixels), so a single point still gets a window.
_MIN_EXTENT = 1e-3
#: Guards the normalisation of degenerate (zero-area) face normals.
_NORMAL_EPS = 1e-12


def to_body_frame(points: np.ndarray, up: str) -> np.ndarray:
    """Points ``(..., 3)`` given with ``up`` (see :data:`UP_AXES`) in the body frame (y up).

    Example:
        >>> to_body_frame(np.array([1.0, 2.0, 3.0]), "-y").tolist()
        [1.0, -2.0, -3.0]
    """
    if up not in UP_AXES:
        raise ValueError(f"up must be one of {sorted(UP_AXES)}, got {up!r}")
    return points * np.asarray(UP_AXES[up])


def check_views(views: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``views`` is a non-empty sequence of :data:`VIEWS` names."""
    if isinstance(views, str) or not views or any(view not in VIEWS for view in views):
        raise ValueError(f"views must be a non-empty sequence of {sorted(VIEWS)}, got {views!r}")


def window_half_size(projections: Sequence[np.ndarray]) -> float:
    """Half side of one square window that holds each of ``projections`` (each ``(N, 2)``)
    with a margin; always positive.

    Example:
        >>> window_half_size([np.array([[0.0, 0.0], [1.0, 0.5]])])
        0.58
    """
    extent = max(float((xy.max(axis=0) - xy.min(axis=0)).max()) for xy in projections)
    return max(extent, _MIN_EXTENT) / 2 * (1 + 2 * _MARGIN)


def set_view_limits(axes: Axes, xy: np.ndarray, half_size: float) -> None:
    """Centre ``axes`` on the bounding box of ``xy (N, 2)`` with a square window of half side
    ``half_size``, equal aspect and no ticks."""
    centre = (xy.min(axis=0) + xy.max(axis=0)) / 2
    axes.set_xlim(centre[0] - half_size, centre[0] + half_size)
    axes.set_ylim(centre[1] - half_size, centre[1] + half_size)
    axes.set_aspect("equal")
    axes.set_xticks([])
    axes.set_yticks([])


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


def _draw_mesh(ax: Axes, vertices: np.ndarray, faces: np.ndarray, view: str) -> None:
    xy, depth = project_view(vertices, view)
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + _NORMAL_EPS
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


def _draw_skeleton(ax: Axes, joints: np.ndarray, parents: Sequence[int], view: str) -> None:
    xy, _ = project_view(joints, view)
    segments = [(xy[p], xy[i]) for i, p in enumerate(parents) if p >= 0]
    ax.add_collection(LineCollection(segments, colors="tab:red", linewidths=1.5, zorder=2))
    ax.scatter(xy[:, 0], xy[:, 1], s=8, c="tab:red", zorder=3)


def plot_body_views(
    vertices: Any,
    faces: Any,
    joints: Any | None = None,
    parents: Sequence[int] | None = None,
    views: Sequence[str] = ("front", "side"),
    title: str | None = None,
    save: PathLike | None = None,
    *,
    up: Up = "y",
) -> Figure:
    """Draw a body mesh (and optionally its skeleton) from several orthographic views.

    The figure is not registered with pyplot (see :mod:`prohmr.visualization.figures`).

    Arguments:
        vertices: ``(V, 3)`` mesh vertices in metres (array or tensor).
        faces: ``(F, 3)`` triangle indices.
        joints: optional ``(J, 3)`` joints drawn over the mesh.
        parents: parent index per joint (-1 for roots); needed with ``joints``.
        views: names from :data:`VIEWS`.
        title: figure title.
        save: if given, the figure is also written there as PNG (folders created).
        up: ``"y"`` for body-frame input (y up, facing +z), ``"-y"`` for camera-frame input.

    Returns:
        The matplotlib figure, one axes per view.
    """
    vertices = to_body_frame(check_points(vertices, "vertices", (3,)), up)
    faces = as_numpy(faces, "faces").astype(np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces must index vertices in [0, {len(vertices)}), some do not")
    if joints is not None:
        if parents is None:
            raise ValueError("parents are needed to draw joints as a skeleton")
        joints = to_body_frame(check_points(joints, "joints", (3,), len(parents)), up)
    check_views(views)
    figure = new_figure(3.2 * len(views), 4.2)
    for index, view in enumerate(views):
        axes = figure.add_subplot(1, len(views), index + 1)
        _draw_mesh(axes, vertices, faces, view)
        if joints is not None:
            _draw_skeleton(axes, joints, parents, view)
        xy, _ = project_view(vertices, view)
        set_view_limits(axes, xy, (xy.max(axis=0) - xy.min(axis=0)).max() / 2 * 1.08)
        axes.set_title(view, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    if save is not None:
        save_figure(figure, save, dpi=110)
    return figure
