"""Lambertian shading on top of :func:`~prohmr.rendering.rasterizer.rasterize`, and overlays.

Normals follow the right-hand rule of each face, ``(v1 - v0) x (v2 - v0)``, and are then turned
towards the camera at every pixel (two-sided lighting), so a mesh renders the same whatever its
winding. The light is directional, given in camera coordinates as the direction from the
surface *towards* the light. Per-pixel colour is
``albedo * (ambient + diffuse * max(0, n . l))``, clamped to ``[0, 1]``, composited over the
background with a hard (un-antialiased) mask. Albedo comes from per-face colours (exactly one
colour per visible face, as part labels need), per-vertex colours (interpolated with the
perspective-correct barycentrics) or :data:`DEFAULT_MESH_COLOR`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from prohmr._utils import DictLikeOutput
from prohmr.rendering.rasterizer import NEAR_PLANE, CameraParameter, _rasterize

__all__ = [
    "DEFAULT_MESH_COLOR",
    "DEFAULT_LIGHT_DIRECTION",
    "DEFAULT_AMBIENT",
    "DEFAULT_DIFFUSE",
    "NORMAL_EPS",
    "RenderOutput",
    "face_normals",
    "vertex_normals",
    "gather_face_values",
    "render_mesh",
    "overlay",
]

#: Albedo used when no colours are given (a light clay blue).
DEFAULT_MESH_COLOR: tuple[float, float, float] = (0.65, 0.74, 0.86)
#: Towards the light, camera coordinates: from above the camera (image y points down) and in front.
DEFAULT_LIGHT_DIRECTION: tuple[float, float, float] = (0.0, -0.5, -1.0)
DEFAULT_AMBIENT: float = 0.35
DEFAULT_DIFFUSE: float = 0.65
#: Guards the normalisation of zero-length normals and light directions.
NORMAL_EPS: float = 1e-12


@dataclass
class RenderOutput(DictLikeOutput):
    """Result of :func:`render_mesh`.

    Attributes:
        image: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
        depth: ``(B, H, W)`` camera-space Z, 0 for background.
        mask: ``(B, H, W)`` bool foreground.
        face_index: ``(B, H, W)`` long visible face, ``-1`` for background.
    """

    image: Tensor
    depth: Tensor
    mask: Tensor
    face_index: Tensor


def face_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unit right-hand normals ``(v1 - v0) x (v2 - v0)`` of each face.

    Arguments:
        vertices: ``(..., V, 3)``.
        faces: ``(F, 3)`` long.

    Returns:
        ``(..., F, 3)``; zero for degenerate faces.

    Example:
        >>> v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> face_normals(v, torch.tensor([[0, 1, 2]]))
        tensor([[0., 0., 1.]])
    """
    return _normalize(_face_cross(vertices, faces), dim=-1)


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unit vertex normals: area-weighted sums of the adjacent faces' right-hand normals.

    Arguments:
        vertices: ``(..., V, 3)``.
        faces: ``(F, 3)`` long.

    Returns:
        ``(..., V, 3)``; zero for vertices used by no (non-degenerate) face.
    """
    # The unnormalised cross product has length 2 * area, which gives the area weighting.
    normal = _face_cross(vertices, faces)
    summed = torch.zeros_like(vertices)
    for k in range(3):
        summed = summed.index_add(-2, faces[:, k], normal)
    return _normalize(summed, dim=-1)


def gather_face_values(
    face_index: Tensor, values: Tensor, background: float | Tensor = 0, *, per_item: bool = False
) -> Tensor:
    """Per-pixel lookup of per-face values, e.g. part labels or colours from a face-index map.

    Arguments:
        face_index: ``(B, H, W)`` long, ``-1`` for background.
        values: ``(F, ...)`` shared by the batch, or ``(B, F, ...)`` with ``per_item=True``.
        background: value for background pixels (broadcast against the trailing value shape).
        per_item: whether ``values`` has a leading batch axis.

    Returns:
        ``(B, H, W, ...)`` with the dtype of ``values``.

    Example:
        >>> part_of_face = torch.tensor([3, 7])
        >>> gather_face_values(torch.tensor([[[0, -1, 1]]]), part_of_face, background=-1)
        tensor([[[ 3, -1,  7]]])
    """
    if face_index.ndim != 3:
        raise ValueError(f"face_index must have shape (B, H, W), got {tuple(face_index.shape)}")
    batch_size = face_index.shape[0]
    if per_item and (values.ndim < 2 or values.shape[0] != batch_size):
        raise ValueError(
            f"values must have shape (B, F, ...) with B={batch_size}, got {tuple(values.shape)}"
        )
    if not per_item and values.ndim < 1:
        raise ValueError("values must have shape (F, ...)")
    safe = face_index.clamp_min(0)
    if per_item:
        num_faces = values.shape[1]
        offsets = torch.arange(batch_size, device=face_index.device).view(-1, 1, 1) * num_faces
        flat = values.reshape(batch_size * num_faces, *values.shape[2:])
        picked = flat[(safe + offsets).reshape(-1)].reshape(*face_index.shape, *values.shape[2:])
    else:
        picked = values[safe.reshape(-1)].reshape(*face_index.shape, *values.shape[1:])
    fill = torch.as_tensor(background, dtype=values.dtype, device=values.device)
    mask = (face_index >= 0).reshape(*face_index.shape, *([1] * (picked.ndim - 3)))
    return torch.where(mask, picked, fill)


def _light(light_direction: Sequence[float] | Tensor, batch_size: int, like: Tensor) -> Tensor:
    light = torch.as_tensor(light_direction, dtype=like.dtype, device=like.device)
    if light.shape == (3,):
        light = light.expand(batch_size, 3)
    if light.shape not in ((batch_size, 3), (1, 3)) or not bool(torch.isfinite(light).all()):
        raise ValueError(
            f"light_direction must be finite with shape (3,) or (B, 3), got {tuple(light.shape)}"
        )
    light = light.expand(batch_size, 3)
    if not bool(((light * light).sum(-1) > NORMAL_EPS**2).all()):
        raise ValueError("light_direction must be non-zero")
    return _normalize(light, dim=-1)


def _colors(
    face_colors: Tensor | None,
    vertex_colors: Tensor | None,
    batch_size: int,
    num_vertices: int,
    num_faces: int,
    like: Tensor,
) -> tuple[Tensor | None, Tensor | None]:
    """Validated ``(B*F, 3)`` face colours or ``(B*V, 3)`` vertex colours (at most one)."""
    if face_colors is not None and vertex_colors is not None:
        raise ValueError("give at most one of face_colors and vertex_colors")
    checked = []
    for colors, count, name, symbol in (
        (face_colors, num_faces, "face_colors", "F"),
        (vertex_colors, num_vertices, "vertex_colors", "V"),
    ):
        if colors is None:
            checked.append(None)
            continue
        tensor = torch.as_tensor(colors, dtype=like.dtype, device=like.device)
        if tensor.shape not in ((count, 3), (batch_size, count, 3)):
            raise ValueError(
                f"{name} must have shape ({symbol}, 3) or (B, {symbol}, 3) with B={batch_size}, "
                f"{symbol}={count}, got {tuple(tensor.shape)}"
            )
        checked.append(tensor.expand(batch_size, count, 3).reshape(-1, 3))
    return checked[0], checked[1]


def _background(
    background: Tensor | Sequence[float] | None,
    batch_size: int,
    height: int,
    width: int,
    like: Tensor,
) -> Tensor:
    """Background as ``(1 or B, 3, 1 or H, 1 or W)``, ready to broadcast."""
    if background is None:
        return like.new_zeros(1, 3, 1, 1)
    tensor = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    if tensor.shape == (3,):
        return tensor.view(1, 3, 1, 1)
    if tensor.shape in ((3, height, width), (batch_size, 3, height, width)):
        return tensor.reshape(-1, 3, height, width)
    raise ValueError(
        f"background must have shape (3,), (3, H, W) or (B, 3, H, W) with B={batch_size}, "
        f"H={height}, W={width}, got {tuple(tensor.shape)}"
    )


def render_mesh(
    vertices_cam: Tensor,
    faces: Tensor,
    image_size: Sequence[int],
    focal_length: CameraParameter,
    principal_point: CameraParameter | None = None,
    *,
    face_colors: Tensor | None = None,
    vertex_colors: Tensor | None = None,
    light_direction: Sequence[float] | Tensor = DEFAULT_LIGHT_DIRECTION,
    background: Tensor | Sequence[float] | None = None,
    ambient: float = DEFAULT_AMBIENT,
    diffuse: float = DEFAULT_DIFFUSE,
    smooth_shading: bool = False,
    cull_backfaces: bool = False,
    near: float = NEAR_PLANE,
) -> RenderOutput:
    """Render shaded meshes: colour, depth, mask and face index.

    Arguments:
        vertices_cam: ``(B, V, 3)`` camera-space vertices (conventions of
            :mod:`prohmr.rendering.rasterizer`: ``+z`` forward, ``x`` right, ``y`` down).
        faces: ``(F, 3)`` long.
        image_size: ``(H, W)``.
        focal_length: float, ``(B,)``, ``(B, 2)`` or ``(1, 2)`` in pixels.
        principal_point: ``(2,)``, ``(B, 2)`` or ``(1, 2)`` in pixels; ``None`` = image centre.
        face_colors: ``(F, 3)`` or ``(B, F, 3)`` albedo per face (flat colour per face).
        vertex_colors: ``(V, 3)`` or ``(B, V, 3)`` albedo per vertex (interpolated).
        light_direction: ``(3,)`` or ``(B, 3)`` towards the light, camera coordinates.
        background: ``None`` (black), an RGB ``(3,)``, ``(3, H, W)`` or ``(B, 3, H, W)`` image.
        ambient: ambient light factor.
        diffuse: Lambertian factor.
        smooth_shading: interpolate area-weighted vertex normals instead of flat face normals.
        cull_backfaces: passed to :func:`~prohmr.rendering.rasterizer.rasterize`.
        near: near plane passed to :func:`~prohmr.rendering.rasterizer.rasterize`.

    Returns:
        :class:`RenderOutput` with ``image (B, 3, H, W)`` in ``[0, 1]``, ``depth (B, H, W)``
        (0 for background), ``mask (B, H, W)`` and ``face_index (B, H, W)`` (-1 background).

    Example:
        >>> vertices = torch.tensor([[[-1.0, -1.0, 4.0], [1.0, -1.0, 4.0], [0.0, 1.0, 4.0]]])
        >>> red = torch.tensor([[1.0, 0.0, 0.0]])
        >>> out = render_mesh(vertices, torch.tensor([[0, 1, 2]]), (8, 8), 8.0, face_colors=red,
        ...                   light_direction=(0, 0, -1), ambient=0.2, diffuse=0.8,
        ...                   background=(0.0, 0.0, 1.0))
        >>> out.image[0, :, 2, 3].tolist(), out.image[0, :, 0, 0].tolist()
        ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0])
    """
    fragments, hits = _rasterize(
        vertices_cam, faces, image_size, focal_length, principal_point, cull_backfaces, near
    )
    faces = faces.to(device=vertices_cam.device, dtype=torch.long)
    batch_size, height, width = fragments.mask.shape
    num_vertices, num_faces = vertices_cam.shape[1], faces.shape[0]
    light = _light(light_direction, batch_size, vertices_cam)
    backdrop = _background(background, batch_size, height, width, vertices_cam)
    face_rgb, vertex_rgb = _colors(
        face_colors, vertex_colors, batch_size, num_vertices, num_faces, vertices_cam
    )

    # Shading runs on the visible pixels only (P of them, one column each), then lands in the
    # image in one write.
    corners = hits.corners  # (3 coordinates, 3 corners, P)
    if smooth_shading:
        normals = vertex_normals(vertices_cam, faces).reshape(-1, 3).t()
        corner_normals = normals.index_select(1, hits.vertex_ids.reshape(-1)).view(3, 3, -1)
        normal = (hits.barycentric * corner_normals).sum(1)
    else:
        normal = _cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal = _normalize(normal, dim=0)
    # Two-sided lighting: turn normals towards the camera (the hit point lies on the view ray).
    surface = (hits.barycentric * corners).sum(1)
    normal = torch.where((normal * surface).sum(0) > 0, -normal, normal)
    lambert = (normal * light.t().index_select(1, hits.batch)).sum(0).clamp_min(0)

    if face_rgb is not None:
        albedo = face_rgb.t().index_select(1, hits.batch * num_faces + hits.face)
    elif vertex_rgb is not None:
        corner_rgb = vertex_rgb.t().index_select(1, hits.vertex_ids.reshape(-1)).view(3, 3, -1)
        albedo = (hits.barycentric * corner_rgb).sum(1)
    else:
        albedo = vertices_cam.new_tensor(DEFAULT_MESH_COLOR)[:, None]
    shaded = (albedo * (ambient + diffuse * lambert)).clamp(0, 1)  # (3, P)

    image = backdrop.clamp(0, 1).expand(batch_size, 3, height, width)
    within = hits.pixel - hits.batch * (height * width)
    channel = torch.arange(3, device=vertices_cam.device)
    image = image.reshape(batch_size, 3, height * width).index_put(
        (hits.batch[None], channel[:, None], within[None]), shaded
    )
    return RenderOutput(
        image=image.view(batch_size, 3, height, width),
        depth=fragments.depth,
        mask=fragments.mask,
        face_index=fragments.face_index,
    )


def _normalize(vectors: Tensor, dim: int) -> Tensor:
    """Unit vectors along ``dim`` (zero stays zero); a sum of squares is much faster than
    ``Tensor.norm`` over a 3-long axis on CPU."""
    squared = (vectors * vectors).sum(dim, keepdim=True)
    return vectors * squared.clamp_min(NORMAL_EPS**2).rsqrt()


def _face_cross(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unnormalised right-hand normals ``(..., F, 3)`` of ``vertices (..., V, 3)``."""
    corners = vertices[..., faces, :]
    edge_a = corners[..., 1, :] - corners[..., 0, :]
    edge_b = corners[..., 2, :] - corners[..., 0, :]
    return torch.linalg.cross(edge_a, edge_b)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """Cross product of ``(3, N)`` column vectors."""
    a0, a1, a2 = a
    b0, b1, b2 = b
    return torch.stack((a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0), dim=0)


def overlay(image: Tensor, render: RenderOutput, alpha: float = 1.0) -> Tensor:
    """Blend a rendering over an image where the mesh is visible.

    Arguments:
        image: ``(B, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]`` (same size as the rendering).
        render: output of :func:`render_mesh`.
        alpha: opacity of the mesh in ``[0, 1]``.

    Returns:
        Image of the same shape as ``image``: ``alpha * render + (1 - alpha) * image`` inside the
        mask, ``image`` elsewhere.
    """
    batch_size, _, height, width = render.image.shape
    unbatched = image.ndim == 3
    batched = image[None] if unbatched else image
    if (
        batched.ndim != 4
        or batched.shape[1:] != (3, height, width)
        or batched.shape[0] not in (1, batch_size)
    ):
        raise ValueError(
            f"image must have shape (3, {height}, {width}) or (B, 3, {height}, {width}), "
            f"got {tuple(image.shape)}"
        )
    if unbatched and batch_size != 1:
        raise ValueError(f"a (3, H, W) image needs a rendering with batch size 1, got {batch_size}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    weight = render.mask[:, None].to(batched.dtype) * alpha
    blended = batched + weight * (render.image.to(batched.dtype) - batched)
    return blended[0] if unbatched else blended
