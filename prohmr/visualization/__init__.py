"""Plots and renderings: skeletons, sample fans, mesh overlays, fitting figures, curves.

Every plotting function returns a :class:`matplotlib.figure.Figure` built without pyplot
(nothing to close, never shown) and takes ``save=`` to also write a PNG (parent folders
created) through :func:`save_figure`. Inputs may be numpy arrays or torch tensors (any device;
detached and copied to the CPU); wrong shapes and NaN raise ``ValueError``. See
``docs/visualization.md``.
"""

from __future__ import annotations

from prohmr.visualization.body_views import VIEWS, plot_body_views, project_view
from prohmr.visualization.curves import plot_loss_curve, plot_min_of_n
from prohmr.visualization.figures import DEFAULT_DPI, save_figure, save_image
from prohmr.visualization.fitting import plot_fitting_before_after
from prohmr.visualization.overlays import (
    PERSON_COLORS,
    plot_mesh_overlay,
    render_mesh_overlay,
    render_side_view,
    side_view_vertices,
)
from prohmr.visualization.samples import plot_sample_fan, sample_colors
from prohmr.visualization.skeletons import (
    BODY25_EDGES,
    H36M17_EDGES,
    H36M17_JOINT_NAMES,
    PROHMR44_EDGES,
    SMPL_EDGES,
    edges_from_parents,
    plot_keypoints_2d,
    plot_skeleton_3d,
)

__all__ = [
    "BODY25_EDGES",
    "DEFAULT_DPI",
    "H36M17_EDGES",
    "H36M17_JOINT_NAMES",
    "PERSON_COLORS",
    "PROHMR44_EDGES",
    "SMPL_EDGES",
    "VIEWS",
    "edges_from_parents",
    "plot_body_views",
    "plot_fitting_before_after",
    "plot_keypoints_2d",
    "plot_loss_curve",
    "plot_mesh_overlay",
    "plot_min_of_n",
    "plot_sample_fan",
    "plot_skeleton_3d",
    "project_view",
    "render_mesh_overlay",
    "render_side_view",
    "sample_colors",
    "save_figure",
    "save_image",
    "side_view_vertices",
]
