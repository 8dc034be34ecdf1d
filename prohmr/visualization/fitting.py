"""Before / after figures of keypoint fitting: projected joints against the target keypoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from prohmr.visualization.figures import (
    PathLike,
    check_edges,
    check_image,
    check_points,
    image_axes,
    new_figure,
    save_figure,
)
from prohmr.visualization.overlays import render_mesh_overlay
from prohmr.visualization.skeletons import draw_skeleton_2d, used_joints

__all__ = ["PREDICTION_COLOR", "TARGET_COLOR", "format_errors", "plot_fitting_before_after"]

#: Colour of the target keypoints.
TARGET_COLOR: str = "tab:green"
#: Colour of the projected joints.
PREDICTION_COLOR: str = "tab:orange"
_RESIDUAL_COLOR = "white"


def format_errors(
    errors: Mapping[str, Any] | None,
) -> tuple[list[str], list[str], list[str]]:
    """Split ``errors`` into title lines: ``(figure, before, after)``.

    A value that is a single number goes to the figure title as ``"name: value"``; a
    ``(before, after)`` pair goes to each panel's title.

    Example:
        >>> format_errors({"reprojection (px)": (12.5, 3.25), "iterations": 30})
        (['iterations: 30'], ['reprojection (px): 12.5'], ['reprojection (px): 3.25'])
    """
    figure_lines: list[str] = []
    before: list[str] = []
    after: list[str] = []
    for name, value in (errors or {}).items():
        number = _scalar(value)
        if number is not None:
            figure_lines.append(f"{name}: {_number(number)}")
            continue
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().tolist()
        pair = list(value) if isinstance(value, Sequence | np.ndarray) else []
        numbers = [_scalar(v) for v in pair]
        if len(numbers) != 2 or any(v is None for v in numbers):
            raise ValueError(
                f"errors[{name!r}] must be a number or a (before, after) pair of numbers"
            )
        before.append(f"{name}: {_number(numbers[0])}")
        after.append(f"{name}: {_number(numbers[1])}")
    return figure_lines, before, after


def _scalar(value: Any) -> Real | None:
    """A plain number from a number, 0-d array or one-element tensor; otherwise None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    return value if isinstance(value, Real) and not isinstance(value, bool) else None


def _number(value: Real) -> str:
    return f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)


def plot_fitting_before_after(
    image: Any,
    keypoints: Any,
    before_joints_2d: Any,
    after_joints_2d: Any,
    edges: Sequence[tuple[int, int]],
    before_mesh: Any | None = None,
    after_mesh: Any | None = None,
    faces: Any | None = None,
    camera_translation_before: Any | None = None,
    camera_translation_after: Any | None = None,
    focal_length: Any | None = None,
    errors: Mapping[str, Any] | None = None,
    save: PathLike | None = None,
    *,
    principal_point: Any | None = None,
    min_confidence: float = 0.0,
    title: str | None = None,
) -> Figure:
    """Two panels, before and after fitting: projected joints, target keypoints, residuals.

    Each panel shows the image (with the mesh rendered over it when one is given), the target
    keypoints (green), the projected joints (orange) and a thin line from each projected joint
    to its drawn target. Targets with a confidence column are drawn when the confidence is
    positive and at least ``min_confidence``; joints that no edge uses are not drawn. The
    figure is not registered with pyplot (nothing to close).

    Arguments:
        image: ``(H, W, 3)`` uint8, or float in ``[0, 1]``.
        keypoints: ``(J, 2)`` or ``(J, 3)`` target keypoints in pixels (with confidence).
        before_joints_2d: ``(J, 2)`` projected joints before fitting, in pixels (the same
            joints as ``keypoints``: slice the model's 44 joints to the keypoints' set).
        after_joints_2d: ``(J, 2)`` after fitting.
        edges: ``(parent, child)`` index pairs over the ``J`` joints, e.g. ``BODY25_EDGES``.
        before_mesh, after_mesh: optional ``(V, 3)`` or ``(K, V, 3)`` vertices before the
            camera translation; each needs ``faces``, its camera translation and
            ``focal_length`` (see :func:`~prohmr.visualization.overlays.render_mesh_overlay`).
        faces: ``(F, 3)``.
        camera_translation_before, camera_translation_after: ``(3,)`` or ``(K, 3)``.
        focal_length: pixels, a float or ``(fx, fy)``.
        errors: numbers for the titles: ``name -> value`` (figure title) or
            ``name -> (before, after)`` (panel titles), see :func:`format_errors`.
        save: if given, the figure is also written there as PNG (folders created).
        principal_point: ``(cx, cy)`` in pixels for the meshes; ``None`` = image centre.
        min_confidence: smallest target confidence drawn.
        title: first line of the figure title.

    Returns:
        The figure, two axes (before, after).

    Example:
        >>> target = np.array([[20.0, 10.0, 1.0], [20.0, 40.0, 1.0], [30.0, 60.0, 0.0]])
        >>> before = np.array([[25.0, 12.0], [28.0, 45.0], [30.0, 50.0]])
        >>> figure = plot_fitting_before_after(
        ...     np.zeros((64, 48, 3)), target, before, target[:, :2] + 0.5, ((0, 1), (1, 2)),
        ...     errors={"error (px)": (5.8, 0.7)})
        >>> [axes.get_title() for axes in figure.axes]
        ['before\\nerror (px): 5.8', 'after\\nerror (px): 0.7']
    """
    background = check_image(image)
    target = check_points(keypoints, "keypoints", (2, 3))
    num_joints = len(target)
    predictions = [
        check_points(before_joints_2d, "before_joints_2d", (2,), num_joints),
        check_points(after_joints_2d, "after_joints_2d", (2,), num_joints),
    ]
    edge_array = check_edges(edges, num_joints)
    figure_lines, before_lines, after_lines = format_errors(errors)
    meshes = (
        ("before", before_mesh, camera_translation_before),
        ("after", after_mesh, camera_translation_after),
    )
    for name, mesh, translation in meshes:
        if mesh is not None and (faces is None or translation is None or focal_length is None):
            raise ValueError(
                f"{name}_mesh needs faces, camera_translation_{name} and focal_length"
            )
    visible = np.zeros(num_joints, dtype=bool)
    visible[used_joints(edge_array, num_joints)] = True
    if target.shape[1] == 3:
        visible &= (target[:, 2] > 0) & (target[:, 2] >= min_confidence)

    height, width = background.shape[:2]
    scale = 4.0 / max(height, width)
    figure = new_figure(2 * max(width * scale, 2.0), max(height * scale, 2.0) + 0.8)
    for index, ((name, mesh, translation), joints_2d, lines) in enumerate(
        zip(meshes, predictions, (before_lines, after_lines))
    ):
        axes = figure.add_subplot(1, 2, index + 1)
        picture = background
        if mesh is not None:
            picture = render_mesh_overlay(
                background, mesh, faces, translation, focal_length, principal_point
            )
        image_axes(axes, picture, "\n".join([name] + lines))
        residuals = LineCollection(
            [(joints_2d[j], target[j, :2]) for j in np.flatnonzero(visible)],
            colors=_RESIDUAL_COLOR, linewidths=0.8, alpha=0.8, zorder=1.5,
        )
        residuals.set_gid("residuals")
        axes.add_collection(residuals)
        draw_skeleton_2d(
            axes, target[:, :2], edge_array, TARGET_COLOR, visible=visible, gid="target"
        )
        draw_skeleton_2d(axes, joints_2d, edge_array, PREDICTION_COLOR, gid="projected")
    handles = [
        Line2D([], [], color=TARGET_COLOR, marker="o", markersize=3, label="target keypoints"),
        Line2D(
            [], [], color=PREDICTION_COLOR, marker="o", markersize=3, label="projected joints"
        ),
    ]
    figure.axes[0].legend(handles=handles, fontsize=7, loc="upper right")
    heading = ([title] if title else []) + figure_lines
    if heading:
        figure.suptitle("\n".join(heading), fontsize=10)
    if save is not None:
        save_figure(figure, save)
    return figure
