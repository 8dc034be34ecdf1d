"""A fan of pose samples coloured by their log-likelihood, with the mode and the ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

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
    as_numpy,
    check_edges,
    check_points,
    new_figure,
    save_figure,
)
from prohmr.visualization.skeletons import draw_skeleton_2d, used_joints

__all__ = ["GROUND_TRUTH_COLOR", "SAMPLE_ALPHA", "plot_sample_fan", "sample_colors"]

#: Opacity of each sample's lines (the mode and ground truth are opaque).
SAMPLE_ALPHA: float = 0.7
#: Colour of the dashed ground-truth skeleton.
GROUND_TRUTH_COLOR: str = "tab:red"
#: Half-width given to the colour scale when every sample has the same log-likelihood.
_FLAT_RANGE = 0.5


def _normalize(log_prob: np.ndarray) -> Normalize:
    low, high = float(log_prob.min()), float(log_prob.max())
    if high - low <= 0:
        low, high = low - _FLAT_RANGE, high + _FLAT_RANGE
    return Normalize(vmin=low, vmax=high)


def sample_colors(log_prob: Any, cmap: str = "viridis") -> np.ndarray:
    """RGBA colour ``(N, 4)`` of each sample: ``cmap`` over ``[min, max]`` of ``log_prob (N,)``.

    Example:
        >>> sample_colors([0.0, 1.0])[:, :3].round(3).tolist()
        [[0.267, 0.005, 0.329], [0.993, 0.906, 0.144]]
    """
    values = as_numpy(log_prob, "log_prob")
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"log_prob must have shape (N,) with N >= 1, got {values.shape}")
    if cmap not in colormaps:
        raise ValueError(f"cmap must be a matplotlib colormap name, got {cmap!r}")
    return colormaps[cmap](_normalize(values)(values))


def plot_sample_fan(
    samples: Any,
    log_prob: Any,
    edges: Sequence[tuple[int, int]],
    mode: Any | None = None,
    ground_truth: Any | None = None,
    views: Sequence[str] = ("front", "side"),
    up: Up = "-y",
    cmap: str = "viridis",
    save: PathLike | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """Overlay ``N`` skeleton samples, coloured by log-likelihood, in orthographic views.

    Samples are drawn from the least to the most likely (the likeliest on top), each as one
    line collection with ``gid = "sample {i}"`` in the colour :func:`sample_colors` gives it;
    the mode is thick black (``gid = "mode"``), the ground truth dashed
    (``gid = "ground_truth"``). A colorbar labelled "log-likelihood" shows the scale. All views
    share one scale. The figure is not registered with pyplot (nothing to close).

    Arguments:
        samples: ``(N, J, 3)`` joints in metres (array or tensor).
        log_prob: ``(N,)`` log-likelihood of each sample.
        edges: ``(parent, child)`` index pairs, e.g. ``SMPL_EDGES``.
        mode: optional ``(J, 3)`` most likely pose.
        ground_truth: optional ``(J, 3)``.
        views: view names of :data:`~prohmr.visualization.body_views.VIEWS`.
        up: ``"-y"`` for the camera frame (y down, facing the camera), ``"y"`` for the body
            frame (y up, facing +z).
        cmap: matplotlib colormap name.
        save: if given, the figure is also written there as PNG (folders created).
        title: figure title.

    Returns:
        The figure: one axes per view, then the colorbar's axes.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> rest = np.cumsum(np.tile([[0.0, -0.05, 0.0]], (24, 1)), axis=0)
        >>> samples = rest + 0.02 * rng.standard_normal((8, 24, 3))
        >>> from prohmr.visualization.skeletons import SMPL_EDGES
        >>> figure = plot_sample_fan(samples, -np.arange(8.0), SMPL_EDGES, mode=rest)
        >>> len(figure.axes)
        3
    """
    points = as_numpy(samples, "samples")
    if points.ndim != 3 or points.shape[2] != 3 or points.shape[0] == 0:
        raise ValueError(f"samples must have shape (N, J, 3) with N >= 1, got {points.shape}")
    num_samples, num_joints, _ = points.shape
    values = as_numpy(log_prob, "log_prob")
    if values.shape != (num_samples,):
        raise ValueError(f"log_prob must have shape ({num_samples},), got {values.shape}")
    colors = sample_colors(values, cmap)
    edge_array = check_edges(edges, num_joints)
    check_views(views)
    extra = {
        name: to_body_frame(check_points(value, name, (3,), num_joints), up)
        for name, value in (("mode", mode), ("ground_truth", ground_truth))
        if value is not None
    }
    points = to_body_frame(points, up)
    used = used_joints(edge_array, num_joints)
    stacked = np.concatenate([points[:, used].reshape(-1, 3)] + [p[used] for p in extra.values()])
    half_size = window_half_size([project_view(stacked, view)[0] for view in views])

    figure = new_figure(3.0 * len(views) + 0.8, 3.8)
    panels = [figure.add_subplot(1, len(views), index + 1) for index in range(len(views))]
    for axes, view in zip(panels, views):
        for i in np.argsort(values, kind="stable"):
            draw_skeleton_2d(
                axes, project_view(points[i], view)[0], edge_array, colors[i], linewidth=1.0,
                marker_size=0, alpha=SAMPLE_ALPHA, gid=f"sample {i}",
            )
        if "mode" in extra:
            draw_skeleton_2d(
                axes, project_view(extra["mode"], view)[0], edge_array, "black", linewidth=3.0,
                marker_size=12, zorder=3, gid="mode",
            )
        if "ground_truth" in extra:
            draw_skeleton_2d(
                axes, project_view(extra["ground_truth"], view)[0], edge_array,
                GROUND_TRUTH_COLOR, linewidth=2.0, linestyle="--", marker_size=0, zorder=4,
                gid="ground_truth",
            )
        set_view_limits(axes, project_view(stacked, view)[0], half_size)
        axes.set_title(view, fontsize=9)
    handles = [Line2D([], [], color=colors[int(np.argmax(values))], label=f"{num_samples} samples")]
    if "mode" in extra:
        handles.append(Line2D([], [], color="black", linewidth=3.0, label="mode"))
    if "ground_truth" in extra:
        handles.append(
            Line2D([], [], color=GROUND_TRUTH_COLOR, linestyle="--", label="ground truth")
        )
    figure.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=len(handles))
    mappable = ScalarMappable(norm=_normalize(values), cmap=colormaps[cmap])
    figure.colorbar(mappable, ax=panels, label="log-likelihood", shrink=0.85)
    if title:
        figure.suptitle(title, fontsize=10)
    if save is not None:
        save_figure(figure, save)
    return figure
