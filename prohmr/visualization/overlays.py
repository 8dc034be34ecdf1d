"""Meshes rendered over images (through :mod:`prohmr.rendering`) and side views of them.

Cameras follow :mod:`prohmr.rendering.rasterizer`: camera-space vertices are
``vertices + camera_translation`` (x right, y down, z forward), a point projects to
``focal_length * (X / Z, Y / Z) + principal_point`` in pixels (the principal point defaults to
the image centre ``(W / 2, H / 2)``), and pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``,
exactly as :func:`~prohmr.geometry.perspective_projection`. Several people (``(K, V, 3)``
vertices) are rendered into one z-buffer, so they occlude each other correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from prohmr.rendering import DEFAULT_MESH_COLOR, overlay, render_mesh
from prohmr.visualization.figures import (
    PathLike,
    as_numpy,
    check_image,
    image_axes,
    new_figure,
    save_figure,
)

__all__ = [
    "PERSON_COLORS",
    "SIDE_VIEW_BACKGROUND",
    "mesh_colors",
    "plot_mesh_overlay",
    "render_mesh_overlay",
    "render_side_view",
    "side_view_vertices",
]

#: Mesh colour of each person, cycled: the renderer's clay blue first.
PERSON_COLORS: tuple[tuple[float, float, float], ...] = (
    DEFAULT_MESH_COLOR,
    (0.90, 0.62, 0.45),
    (0.55, 0.80, 0.55),
    (0.85, 0.55, 0.80),
    (0.95, 0.85, 0.45),
    (0.55, 0.80, 0.85),
)
#: Background of side views (white).
SIDE_VIEW_BACKGROUND: tuple[float, float, float] = (1.0, 1.0, 1.0)


def _camera_vertices(vertices: Any, camera_translation: Any) -> torch.Tensor:
    """Validated camera-space vertices ``(K, V, 3)`` float32 (on the device of a tensor input)."""
    if isinstance(vertices, torch.Tensor):
        points = vertices.detach().to(torch.float32)
    else:
        points = torch.as_tensor(as_numpy(vertices, "vertices"), dtype=torch.float32)
    if points.ndim == 2:
        points = points[None]
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[1] == 0:
        raise ValueError(f"vertices must have shape (V, 3) or (K, V, 3), got {tuple(points.shape)}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("vertices contains NaN or infinite values")
    num_people = points.shape[0]
    translation = torch.as_tensor(
        as_numpy(camera_translation, "camera_translation"), dtype=torch.float32,
        device=points.device,
    )
    if translation.shape == (3,):
        translation = translation.expand(num_people, 3)
    if translation.shape != (num_people, 3):
        raise ValueError(
            f"camera_translation must have shape (3,) or ({num_people}, 3), "
            f"got {tuple(translation.shape)}"
        )
    return points + translation[:, None]


def _faces(faces: Any, num_vertices: int, device: torch.device) -> torch.Tensor:
    """Validated faces ``(F, 3)`` long."""
    face_array = as_numpy(faces, "faces")
    if face_array.ndim != 2 or face_array.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {face_array.shape}")
    if face_array.size and (face_array.min() < 0 or face_array.max() >= num_vertices):
        raise ValueError(f"faces must index vertices in [0, {num_vertices}), some do not")
    return torch.as_tensor(face_array.astype(np.int64), device=device)


def _camera(focal_length: Any, principal_point: Any | None) -> tuple[Any, Any]:
    """Focal ``float`` or ``(1, 2)`` and principal point ``None`` or ``(2,)``, validated."""
    focal = as_numpy(focal_length, "focal_length")
    if focal.shape not in ((), (1,), (2,)) or not (focal != 0).all():
        raise ValueError(f"focal_length must be a non-zero float or (fx, fy), got {focal.shape}")
    focal_value: Any = float(focal.reshape(-1)[0]) if focal.size == 1 else focal.reshape(1, 2)
    if principal_point is None:
        return focal_value, None
    principal = as_numpy(principal_point, "principal_point")
    if principal.shape != (2,):
        raise ValueError(f"principal_point must have shape (2,) as (cx, cy), got {principal.shape}")
    return focal_value, principal


def mesh_colors(color: Any | None, num_people: int) -> np.ndarray:
    """RGB albedo ``(K, 3)`` per person from ``None`` (:data:`PERSON_COLORS`), one RGB ``(3,)``
    for everyone, or ``(K, 3)``; values in ``[0, 1]``.

    Example:
        >>> mesh_colors((1.0, 0.0, 0.0), 2).tolist()
        [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    """
    if color is None:
        return np.array([PERSON_COLORS[k % len(PERSON_COLORS)] for k in range(num_people)])
    rgb = as_numpy(color, "color")
    if rgb.shape == (3,):
        rgb = np.tile(rgb, (num_people, 1))
    if rgb.shape != (num_people, 3) or rgb.min() < 0 or rgb.max() > 1:
        raise ValueError(
            f"color must be an RGB (3,) or ({num_people}, 3) in [0, 1], got shape {rgb.shape}"
        )
    return rgb


def _on(value: float | np.ndarray, like: torch.Tensor) -> float | torch.Tensor:
    """A float as is, an array as a float32 tensor on the device of ``like``."""
    if isinstance(value, float):
        return value
    return torch.as_tensor(value, dtype=torch.float32, device=like.device)


def _render(
    vertices_cam: torch.Tensor,
    faces: torch.Tensor,
    background: np.ndarray,
    focal: Any,
    principal: np.ndarray | None,
    colors: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """All people in one z-buffer over ``background (H, W, 3)`` in [0, 1]; uint8 result."""
    num_people, num_vertices, _ = vertices_cam.shape
    device = vertices_cam.device
    offsets = torch.arange(num_people, device=device)[:, None, None] * num_vertices
    all_faces = (faces[None] + offsets).reshape(-1, 3)
    face_colors = torch.as_tensor(colors, dtype=torch.float32, device=device)
    face_colors = face_colors.repeat_interleave(faces.shape[0], dim=0)
    height, width = background.shape[:2]
    backdrop = torch.as_tensor(background, dtype=torch.float32, device=device).permute(2, 0, 1)
    render = render_mesh(
        vertices_cam.reshape(1, -1, 3), all_faces, (height, width),
        _on(focal, vertices_cam), None if principal is None else _on(principal, vertices_cam),
        face_colors=face_colors, smooth_shading=True,
    )
    blended = overlay(backdrop, render, alpha=alpha)
    return (blended.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def render_mesh_overlay(
    image: Any,
    vertices: Any,
    faces: Any,
    camera_translation: Any,
    focal_length: Any,
    principal_point: Any | None = None,
    color: Any | None = None,
    alpha: float = 0.8,
) -> np.ndarray:
    """Render one or several meshes over an image.

    Arguments:
        image: ``(H, W, 3)`` uint8, or float in ``[0, 1]``.
        vertices: ``(V, 3)`` or ``(K, V, 3)`` (K people) in metres, before the camera
            translation (array or tensor; a CUDA tensor renders on its device).
        faces: ``(F, 3)`` triangle indices shared by every mesh.
        camera_translation: ``(3,)`` or ``(K, 3)``.
        focal_length: pixels, a float or ``(fx, fy)``.
        principal_point: ``(cx, cy)`` in pixels; ``None`` = the image centre.
        color: ``None`` (:data:`PERSON_COLORS`), an RGB ``(3,)`` or ``(K, 3)`` in ``[0, 1]``.
        alpha: mesh opacity in ``[0, 1]``.

    Returns:
        ``(H, W, 3)`` uint8: ``alpha * shaded mesh + (1 - alpha) * image`` where a mesh is
        visible, the image elsewhere.

    Example:
        >>> square = np.array([[-1.0, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]])
        >>> out = render_mesh_overlay(np.zeros((8, 8, 3)), square, [[0, 1, 2], [0, 2, 3]],
        ...                           [0.0, 0.0, 10.0], 20.0, alpha=1.0)
        >>> (out.sum(axis=2) > 0).astype(int).sum(axis=0).tolist()
        [0, 0, 4, 4, 4, 4, 0, 0]
    """
    background = check_image(image)
    vertices_cam = _camera_vertices(vertices, camera_translation)
    face_tensor = _faces(faces, vertices_cam.shape[1], vertices_cam.device)
    focal, principal = _camera(focal_length, principal_point)
    colors = mesh_colors(color, vertices_cam.shape[0])
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return _render(vertices_cam, face_tensor, background, focal, principal, colors, alpha)


def side_view_vertices(
    vertices: Any, camera_translation: Any, angle: float = 90.0
) -> torch.Tensor:
    """Camera-space vertices turned by ``angle`` degrees about the vertical (camera y) axis
    through the centre of their bounding box.

    A positive angle turns a subject who faces the camera so that their left side (image
    right) comes towards the camera: with 90 degrees their face points to the image left,
    like the "side" view of :func:`~prohmr.visualization.body_views.plot_body_views`.

    Arguments:
        vertices: ``(V, 3)`` or ``(K, V, 3)`` before the camera translation.
        camera_translation: ``(3,)`` or ``(K, 3)``.
        angle: degrees.

    Returns:
        ``(K, V, 3)`` float32 camera-space vertices (all people turned about one centre).

    Example:
        >>> turned = side_view_vertices([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], [0.0, 0.0, 5.0])
        >>> turned[0, :, 2].round().tolist()  # the subject's left (+x) came towards the camera
        [4.0, 6.0]
    """
    vertices_cam = _camera_vertices(vertices, camera_translation)
    flat = vertices_cam.reshape(-1, 3)
    centre = (flat.min(dim=0).values + flat.max(dim=0).values) / 2
    radians = np.deg2rad(as_numpy(angle, "angle").item())
    cos, sin = float(np.cos(radians)), float(np.sin(radians))
    # x' = x cos + z sin, z' = -x sin + z cos: a right-handed turn about +y (image down).
    rotation = torch.tensor(
        [[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]], device=flat.device
    )
    return (vertices_cam - centre) @ rotation.T + centre


def render_side_view(
    image_size: Sequence[int],
    vertices: Any,
    faces: Any,
    camera_translation: Any,
    focal_length: Any,
    principal_point: Any | None = None,
    color: Any | None = None,
    angle: float = 90.0,
) -> np.ndarray:
    """Render the meshes turned by :func:`side_view_vertices` on a white background.

    Arguments:
        image_size: ``(H, W)`` of the rendering.
        vertices, faces, camera_translation, focal_length, principal_point, color: as
            :func:`render_mesh_overlay`.
        angle: degrees about the vertical through the meshes' centre.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    if len(image_size) != 2 or min(int(side) for side in image_size) <= 0:
        raise ValueError(f"image_size must be two positive ints (H, W), got {image_size!r}")
    turned = side_view_vertices(vertices, camera_translation, angle)
    face_tensor = _faces(faces, turned.shape[1], turned.device)
    focal, principal = _camera(focal_length, principal_point)
    colors = mesh_colors(color, turned.shape[0])
    background = np.empty((int(image_size[0]), int(image_size[1]), 3))
    background[:] = SIDE_VIEW_BACKGROUND
    return _render(turned, face_tensor, background, focal, principal, colors, 1.0)


def plot_mesh_overlay(
    image: Any,
    vertices: Any,
    faces: Any,
    camera_translation: Any,
    focal_length: Any,
    principal_point: Any | None = None,
    side_view: bool = True,
    title: str | None = None,
    save: PathLike | None = None,
    *,
    color: Any | None = None,
    alpha: float = 0.8,
) -> Figure:
    """Input image | mesh overlay | (optional) side view, side by side.

    The side view turns the meshes by 90 degrees about the vertical through their centre
    (:func:`side_view_vertices`) and renders them with the same camera on white. The figure is
    not registered with pyplot (nothing to close).

    Arguments:
        image, vertices, faces, camera_translation, focal_length, principal_point, color,
            alpha: as :func:`render_mesh_overlay`.
        side_view: add the side-view panel.
        title: figure title.
        save: if given, the figure is also written there as PNG (folders created).

    Returns:
        The figure: 3 axes (2 without the side view).
    """
    background = check_image(image)
    blended = render_mesh_overlay(
        background, vertices, faces, camera_translation, focal_length, principal_point,
        color=color, alpha=alpha,
    )
    panels = [("input", background), ("overlay", blended)]
    if side_view:
        side = render_side_view(
            background.shape[:2], vertices, faces, camera_translation, focal_length,
            principal_point, color=color,
        )
        panels.append(("side view", side))
    height, width = background.shape[:2]
    scale = 3.2 / max(height, width)
    figure = new_figure(len(panels) * max(width * scale, 1.5), max(height * scale, 1.5) + 0.5)
    for index, (name, picture) in enumerate(panels):
        image_axes(figure.add_subplot(1, len(panels), index + 1), picture, name)
    if title:
        figure.suptitle(title, fontsize=10)
    if save is not None:
        save_figure(figure, save)
    return figure
