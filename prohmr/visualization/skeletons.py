"""Skeleton edge lists and skeleton plots: orthographic views of 3D joints, 2D keypoints.

Edge lists are tuples of ``(parent, child)`` joint index pairs, each list a tree over the
joints it uses, oriented away from the pelvis. They index the joint orders of
:mod:`prohmr.body.joints`:

- :data:`SMPL_EDGES`: the 24 SMPL joints (one edge per non-root joint of ``SMPL_PARENTS``);
- :data:`BODY25_EDGES`: the 25 OpenPose BODY_25 keypoints (OpenPose's own limb pairs);
- :data:`H36M17_EDGES`: the 17 joints of ``H36M_17_INPUT_2D``, in that order;
- :data:`PROHMR44_EDGES`: the 44 ProHMR joints drawn through their BODY_25 part (joints 0-24;
  the 19 extra joints, which repeat the same body parts, have no edge and are not drawn).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from prohmr.body.joints import (
    BODY25_JOINT_NAMES,
    H36M_17_INPUT_2D,
    PROHMR_JOINT_NAMES,
    SMPL_PARENTS,
)
from prohmr.visualization.body_views import (
    Up,
    check_views,
    project_view,
    set_view_limits,
    to_body_frame,
    window_half_size,
)
from prohmr.visualization.figures import (
    PathLike,
    check_edges,
    check_image,
    check_points,
    image_axes,
    new_figure,
    save_figure,
)

__all__ = [
    "BODY25_EDGES",
    "H36M17_EDGES",
    "H36M17_JOINT_NAMES",
    "PROHMR44_EDGES",
    "SMPL_EDGES",
    "Edges",
    "draw_skeleton_2d",
    "edges_from_parents",
    "plot_keypoints_2d",
    "plot_skeleton_3d",
    "skeleton_color",
    "used_joints",
]

Edges = tuple[tuple[int, int], ...]


def edges_from_parents(parents: Sequence[int]) -> Edges:
    """``(parent, child)`` pairs of a parent list (``-1`` marks roots).

    Example:
        >>> edges_from_parents((-1, 0, 1, 0))
        ((0, 1), (1, 2), (0, 3))
    """
    return tuple((int(parent), child) for child, parent in enumerate(parents) if parent >= 0)


def _edges_by_name(names: Sequence[str], pairs: Sequence[tuple[str, str]]) -> Edges:
    return tuple((names.index(parent), names.index(child)) for parent, child in pairs)


SMPL_EDGES: Edges = edges_from_parents(SMPL_PARENTS)

BODY25_EDGES: Edges = _edges_by_name(
    BODY25_JOINT_NAMES,
    (
        ("MidHip", "Neck"), ("Neck", "Nose"), ("Nose", "REye"), ("REye", "REar"),
        ("Nose", "LEye"), ("LEye", "LEar"),
        ("Neck", "RShoulder"), ("RShoulder", "RElbow"), ("RElbow", "RWrist"),
        ("Neck", "LShoulder"), ("LShoulder", "LElbow"), ("LElbow", "LWrist"),
        ("MidHip", "RHip"), ("RHip", "RKnee"), ("RKnee", "RAnkle"),
        ("RAnkle", "RHeel"), ("RAnkle", "RBigToe"), ("RBigToe", "RSmallToe"),
        ("MidHip", "LHip"), ("LHip", "LKnee"), ("LKnee", "LAnkle"),
        ("LAnkle", "LHeel"), ("LAnkle", "LBigToe"), ("LBigToe", "LSmallToe"),
    ),
)

#: Names of the 17 joints of ``H36M_17_INPUT_2D``, in that order.
H36M17_JOINT_NAMES: tuple[str, ...] = tuple(PROHMR_JOINT_NAMES[i] for i in H36M_17_INPUT_2D)

H36M17_EDGES: Edges = _edges_by_name(
    H36M17_JOINT_NAMES,
    (
        ("Pelvis_MPII", "Spine_H36M"), ("Spine_H36M", "Neck_LSP"), ("Neck_LSP", "Jaw_H36M"),
        ("Jaw_H36M", "Head_H36M"),
        ("Neck_LSP", "R_Shoulder"), ("R_Shoulder", "R_Elbow"), ("R_Elbow", "R_Wrist"),
        ("Neck_LSP", "L_Shoulder"), ("L_Shoulder", "L_Elbow"), ("L_Elbow", "L_Wrist"),
        ("Pelvis_MPII", "R_Hip"), ("R_Hip", "R_Knee"), ("R_Knee", "R_Ankle"),
        ("Pelvis_MPII", "L_Hip"), ("L_Hip", "L_Knee"), ("L_Knee", "L_Ankle"),
    ),
)

#: The first 25 of the 44 ProHMR joints are the BODY_25 keypoints in BODY_25 order.
PROHMR44_EDGES: Edges = BODY25_EDGES


def skeleton_color(index: int) -> str:
    """Colour of the ``index``-th skeleton of a plot: matplotlib's default cycle ``C0``, ...

    Example:
        >>> skeleton_color(0), skeleton_color(11)
        ('C0', 'C1')
    """
    return f"C{index % 10}"


def used_joints(edges: np.ndarray, num_joints: int) -> np.ndarray:
    """Sorted indices of the joints an edge uses (all ``num_joints`` when there is no edge).

    Example:
        >>> used_joints(np.array([[0, 2], [2, 3]]), 5).tolist()
        [0, 2, 3]
    """
    return np.unique(edges) if len(edges) else np.arange(num_joints)


def draw_skeleton_2d(
    axes: Axes,
    points: np.ndarray,
    edges: np.ndarray,
    color: Any,
    *,
    visible: np.ndarray | None = None,
    linewidth: float = 1.5,
    linestyle: str = "-",
    marker_size: float = 10.0,
    alpha: float = 1.0,
    zorder: float = 2.0,
    gid: str | None = None,
) -> LineCollection:
    """Draw one skeleton: its edges as one :class:`LineCollection` (given ``gid``) and its joints.

    Arguments:
        axes: where to draw.
        points: ``(J, 2)`` in the axes' data coordinates.
        edges: ``(E, 2)`` index pairs; an edge is drawn when both its joints are visible.
        color: one matplotlib colour.
        visible: ``(J,)`` bool, the joints to draw (default: every joint an edge uses, or all
            joints when there is no edge).
        linewidth, linestyle, alpha, zorder: line style; ``marker_size`` 0 draws no joints.
        gid: identifier set on the line collection (tests and SVG output find it by it).

    Returns:
        The edges' line collection.
    """
    if visible is None:
        visible = np.zeros(len(points), dtype=bool)
        visible[used_joints(edges, len(points))] = True
    shown = [(points[a], points[b]) for a, b in edges if visible[a] and visible[b]]
    lines = LineCollection(
        shown, colors=[color], linewidths=linewidth, linestyles=linestyle, alpha=alpha,
        zorder=zorder,
    )
    lines.set_gid(gid)
    axes.add_collection(lines)
    if marker_size > 0 and visible.any():
        axes.scatter(
            points[visible, 0], points[visible, 1], s=marker_size, color=color, alpha=alpha,
            zorder=zorder + 0.1, linewidths=0,
        )
    return lines


def _check_labels(labels: Sequence[str] | None, count: int) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str) or len(labels) != count:
        raise ValueError(f"labels must be a sequence of {count} names (one per skeleton)")
    return [str(label) for label in labels]


def plot_skeleton_3d(
    joints: Any,
    edges: Sequence[tuple[int, int]],
    views: Sequence[str] = ("front", "side", "top"),
    others: Sequence[Any] | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
    save: PathLike | None = None,
    *,
    up: Up = "y",
) -> Figure:
    """Orthographic views of a 3D skeleton (and others, e.g. ground truth) with equal aspect.

    All views share one scale, so lengths compare across panels. Views are those of
    :data:`~prohmr.visualization.body_views.VIEWS` ("front" looks at the subject's face).
    The figure is not registered with pyplot (nothing to close).

    Arguments:
        joints: ``(J, 3)`` joints in metres (array or tensor).
        edges: ``(parent, child)`` index pairs, e.g. :data:`SMPL_EDGES`; joints that no edge
            uses are not drawn.
        views: view names, one subplot each.
        others: more ``(J, 3)`` skeletons in the same frame, drawn in other colours beneath
            ``joints``.
        labels: one legend name per skeleton (``joints`` first, then ``others``).
        title: figure title.
        save: if given, the figure is also written there as PNG (folders created).
        up: ``"y"`` for the body frame (y up, facing +z), ``"-y"`` for the camera frame
            (y down, z forward, facing the camera).

    Returns:
        The figure, one axes per view.

    Example:
        >>> joints = np.cumsum(np.tile([[0.0, 0.05, 0.01]], (24, 1)), axis=0)
        >>> figure = plot_skeleton_3d(joints, SMPL_EDGES, others=[joints + 0.02],
        ...                           labels=["prediction", "ground truth"])
        >>> len(figure.axes)
        3
    """
    main = check_points(joints, "joints", (3,))
    skeletons = [main] + [
        check_points(other, f"others[{k}]", (3,), len(main)) for k, other in enumerate(others or [])
    ]
    edge_array = check_edges(edges, len(main))
    names = _check_labels(labels, len(skeletons))
    check_views(views)
    skeletons = [to_body_frame(skeleton, up) for skeleton in skeletons]
    used = used_joints(edge_array, len(main))
    stacked = np.concatenate([skeleton[used] for skeleton in skeletons])
    projections = {
        view: [project_view(skeleton, view)[0] for skeleton in skeletons] for view in views
    }
    half_size = window_half_size([project_view(stacked, view)[0] for view in views])

    figure = new_figure(3.0 * len(views), 3.6)
    for index, view in enumerate(views):
        axes = figure.add_subplot(1, len(views), index + 1)
        for k, xy in enumerate(projections[view]):
            # ``joints`` on top of the others.
            draw_skeleton_2d(
                axes, xy, edge_array, skeleton_color(k), zorder=3.0 if k == 0 else 2.0,
                gid=f"skeleton {k}",
            )
        set_view_limits(axes, project_view(stacked, view)[0], half_size)
        axes.set_title(view, fontsize=9)
    if names is not None:
        handles = [Line2D([], [], color=skeleton_color(k)) for k in range(len(names))]
        figure.legend(handles, names, fontsize=8, loc="outside lower center", ncols=len(names))
    if title:
        figure.suptitle(title, fontsize=10)
    if save is not None:
        save_figure(figure, save)
    return figure


def plot_keypoints_2d(
    image: Any,
    keypoints: Any,
    edges: Sequence[tuple[int, int]],
    others: Sequence[Any] | None = None,
    labels: Sequence[str] | None = None,
    min_confidence: float = 0.0,
    title: str | None = None,
    save: PathLike | None = None,
) -> Figure:
    """2D keypoints (and other keypoint sets) over an image, in pixel coordinates.

    Pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``, the convention of
    :mod:`prohmr.rendering` and :func:`~prohmr.geometry.perspective_projection`. With a
    confidence column, a keypoint is drawn when its confidence is positive (zero marks a
    missing OpenPose keypoint) and at least ``min_confidence``; an edge when both ends are.
    Keypoints that no edge uses are not drawn.

    Arguments:
        image: ``(H, W, 3)`` uint8, or float in ``[0, 1]``; ``None`` draws on a blank canvas
            (y pointing down) fitted to the keypoints.
        keypoints: ``(J, 2)`` pixels, or ``(J, 3)`` with a confidence column.
        edges: ``(parent, child)`` index pairs, e.g. :data:`BODY25_EDGES`.
        others: more ``(J, 2)`` or ``(J, 3)`` keypoint sets, drawn in other colours beneath
            ``keypoints``.
        labels: one legend name per keypoint set (``keypoints`` first).
        min_confidence: smallest confidence drawn.
        title: axes title.
        save: if given, the figure is also written there as PNG (folders created).

    Returns:
        The figure, one axes.

    Example:
        >>> keypoints = np.array([[10.0, 5.0, 0.9], [10.0, 20.0, 0.8], [0.0, 0.0, 0.0]])
        >>> figure = plot_keypoints_2d(np.zeros((32, 24, 3)), keypoints, ((0, 1), (1, 2)))
        >>> len(figure.axes)
        1
    """
    sets = [check_points(keypoints, "keypoints", (2, 3))]
    sets += [
        check_points(other, f"others[{k}]", (2, 3), len(sets[0]))
        for k, other in enumerate(others or [])
    ]
    edge_array = check_edges(edges, len(sets[0]))
    names = _check_labels(labels, len(sets))
    background = None if image is None else check_image(image)
    used = np.zeros(len(sets[0]), dtype=bool)
    used[used_joints(edge_array, len(used))] = True
    visible = [used & _visible(points, min_confidence) for points in sets]

    if background is None:
        figure = new_figure(4.0, 4.0)
        axes = figure.add_subplot()
        drawn = np.concatenate([points[mask, :2] for points, mask in zip(sets, visible)])
        if len(drawn):
            set_view_limits(axes, drawn, window_half_size([drawn]))
        axes.invert_yaxis()
        axes.set_aspect("equal")
        if title:
            axes.set_title(title, fontsize=9)
    else:
        height, width = background.shape[:2]
        scale = 5.0 / max(height, width)
        figure = new_figure(max(width * scale, 2.0), max(height * scale, 2.0) + 0.3)
        axes = figure.add_subplot()
        image_axes(axes, background, title)
    for k, (points, mask) in enumerate(zip(sets, visible)):
        draw_skeleton_2d(
            axes, points[:, :2], edge_array, skeleton_color(k), visible=mask,
            zorder=3.0 if k == 0 else 2.0, gid=f"keypoints {k}",
        )
    if names is not None:
        handles = [Line2D([], [], color=skeleton_color(k)) for k in range(len(names))]
        axes.legend(handles, names, fontsize=8, loc="upper right")
    if save is not None:
        save_figure(figure, save)
    return figure


def _visible(points: np.ndarray, min_confidence: float) -> np.ndarray:
    """``(J,)`` bool: no confidence column, or a positive confidence of at least the minimum."""
    if points.shape[1] == 2:
        return np.ones(len(points), dtype=bool)
    return (points[:, 2] > 0) & (points[:, 2] >= min_confidence)
