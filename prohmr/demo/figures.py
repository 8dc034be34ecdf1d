"""Composite figures of the demo, assembled from :mod:`prohmr.visualization`'s renderers.

Each function writes one PNG and returns its path. Panels show the demo's display crops
(:data:`~prohmr.demo.scenes.DISPLAY_SIZE` pixels, the network's box resampled larger); meshes
are rendered with :func:`~prohmr.visualization.render_mesh_overlay` /
:func:`~prohmr.visualization.render_side_view` in the camera of the crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from prohmr.demo.scenes import DISPLAY_SIZE, DemoPerson
from prohmr.visualization import render_mesh_overlay, render_side_view
from prohmr.visualization.figures import image_axes, new_figure, save_figure

__all__ = [
    "MeshPanel",
    "inputs_figure",
    "mesh_grid_figure",
]

#: Inches per panel of the grids.
_PANEL_INCHES = 2.1
#: Colour map of log-likelihoods (the one of :func:`~prohmr.visualization.plot_sample_fan`).
_CMAP = "viridis"
#: Opacity of mesh overlays.
_MESH_ALPHA = 0.85


@dataclass
class MeshPanel:
    """One mesh (or several) to draw over a display crop.

    Attributes:
        vertices: ``(V, 3)`` or ``(K, V, 3)`` before the camera translation.
        camera_translation: ``(3,)`` or ``(K, 3)``.
        focal_length: display-crop pixels.
        principal_point: ``(2,)`` display-crop pixels.
        color: RGB ``(3,)`` or ``(K, 3)``; None for the default clay.
    """

    vertices: np.ndarray
    camera_translation: np.ndarray
    focal_length: float
    principal_point: np.ndarray
    color: np.ndarray | None = None

    def overlay(self, image: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """``(D, D, 3)`` uint8: the mesh over ``image``."""
        return render_mesh_overlay(
            image, self.vertices, faces, self.camera_translation, self.focal_length,
            self.principal_point, color=self.color, alpha=_MESH_ALPHA,
        )

    def side(self, faces: np.ndarray) -> np.ndarray:
        """``(D, D, 3)`` uint8: the mesh turned 90 degrees about the vertical, on white."""
        return render_side_view(
            (DISPLAY_SIZE, DISPLAY_SIZE), self.vertices, faces, self.camera_translation,
            self.focal_length, self.principal_point, color=self.color,
        )


def inputs_figure(people: Sequence[DemoPerson], path: Path) -> Path:
    """The rendered images, one column per person, one row per camera, with the crop boxes.

    Arguments:
        people: the demo's people.
        path: PNG to write.
    """
    rows = 2
    figure = new_figure(_PANEL_INCHES * len(people), _PANEL_INCHES * rows + 0.4)
    for row in range(rows):
        for column, person in enumerate(people):
            view = person.views[row]
            axes = figure.add_subplot(rows, len(people), row * len(people) + column + 1)
            camera = "camera 1" if row == 0 else "camera 2"
            image_axes(axes, view.sample.image, f"person {person.index}, {camera}")
            corner = view.box_center - view.box_size / 2
            axes.add_patch(Rectangle(
                tuple(corner), view.box_size, view.box_size, fill=False, edgecolor="tab:red",
                linewidth=1.0, linestyle="--",
            ))
            size = view.sample.image.shape[0]
            # Boxes may reach past the image: keep the whole box in view.
            low = min(0.0, float(corner.min()))
            high = max(float(size), float((corner + view.box_size).max()))
            axes.set_xlim(low, high)
            axes.set_ylim(high, low)
    figure.suptitle("held-out people (dashed: the crop box)", fontsize=10)
    return save_figure(figure, path)


def _colorbar(figure, axes: list[Axes], log_prob: np.ndarray) -> None:
    low, high = float(np.min(log_prob)), float(np.max(log_prob))
    if high <= low:  # as sample_colors: a flat scale gets a unit-wide range
        low, high = low - 0.5, high + 0.5
    mappable = ScalarMappable(norm=Normalize(vmin=low, vmax=high), cmap=_CMAP)
    figure.colorbar(mappable, ax=axes, label="log-likelihood", shrink=0.8)


def mesh_grid_figure(
    rows: Sequence[Sequence[tuple[str, np.ndarray | MeshPanel | None]]],
    background: Sequence[np.ndarray],
    faces: np.ndarray,
    path: Path,
    *,
    title: str | None = None,
    side_columns: Sequence[int] = (),
    colorbar_log_prob: np.ndarray | None = None,
) -> Path:
    """A grid of panels: plain images, or meshes over each row's display crop.

    Arguments:
        rows: per row, ``(panel title, content)`` per column: an ``(D, D, 3)`` image, a
            :class:`MeshPanel` (drawn over the row's background, or turned to a side view for
            the columns in ``side_columns``), or None for the background alone.
        background: one ``(D, D, 3)`` uint8 display crop per row.
        faces: ``(F, 3)`` mesh faces.
        path: PNG to write.
        title: figure title.
        side_columns: columns whose meshes are drawn as side views on white.
        colorbar_log_prob: add a log-likelihood colorbar spanning these values.
    """
    num_rows, num_columns = len(rows), max(len(row) for row in rows)
    extra = 0.9 if colorbar_log_prob is not None else 0.0
    figure = new_figure(_PANEL_INCHES * num_columns + extra,
                        _PANEL_INCHES * num_rows + (0.5 if title else 0.1))
    panels = []
    for r, (row, image) in enumerate(zip(rows, background)):
        for c, (name, content) in enumerate(row):
            axes = figure.add_subplot(num_rows, num_columns, r * num_columns + c + 1)
            panels.append(axes)
            if isinstance(content, MeshPanel):
                picture = content.side(faces) if c in side_columns else content.overlay(
                    image, faces
                )
            else:
                picture = image if content is None else content
            image_axes(axes, picture, name)
            axes.title.set_fontsize(8)
    if colorbar_log_prob is not None:
        _colorbar(figure, panels, colorbar_log_prob)
    if title:
        figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)
