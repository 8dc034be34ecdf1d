"""Batched z-buffer triangle rasteriser in pure PyTorch (CPU and CUDA).

Conventions (shared with :func:`prohmr.geometry.perspective_projection`):

- Camera space: the camera sits at the origin and looks down ``+z``; image ``x`` points right
  and image ``y`` points down. A point ``(X, Y, Z)`` projects to pixel coordinates
  ``u = fx * X / Z + cx``, ``v = fy * Y / Z + cy`` with the principal point ``(cx, cy)`` in
  pixels (default: the image centre ``(W / 2, H / 2)``).
- Pixel ``(row i, column j)`` covers ``[j, j + 1) x [i, i + 1)`` in pixel coordinates and is
  sampled at its centre ``(j + 0.5, i + 0.5)``. A pixel belongs to a triangle when its centre
  lies inside or on the triangle's projection.
- ``depth`` is the camera-space ``Z`` of the visible surface point (not the distance along the
  ray); background pixels hold :data:`BACKGROUND_DEPTH` (0, as pyrender does, so
  ``depth > 0`` is the mask and arithmetic on depth maps never meets ``inf``).
- Triangles with any vertex at ``Z <= near`` (default :data:`NEAR_PLANE`) are dropped whole
  rather than clipped; degenerate (zero screen area) triangles are dropped too.
- Visibility is resolved by the z-test alone (closed meshes need no culling); with
  ``cull_backfaces=True`` a triangle is kept only when its right-hand normal
  ``(v1 - v0) x (v2 - v0)`` points towards the camera. Equal depths go to the lower face index,
  so results are deterministic.

How it is fast: only triangles whose bounding box contains a pixel centre are kept; each one
enumerates the pixel centres of its (clipped) bounding box, the edge functions are evaluated
for all those candidates at once, and the z-test is a single ``scatter_reduce(amin)`` over keys
that pack the float32 depth bits (monotonic for positive floats) above the face index. The
coverage pass runs without autograd; barycentrics and depth of the winning faces are then
recomputed from the vertices in the input dtype, so they are differentiable with respect to the
vertices (face visibility itself is not). The library never changes torch's thread count; the
caller pins it (one thread per data worker is fastest on small CPUs).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import Tensor

from prohmr._utils import DictLikeOutput

__all__ = [
    "BACKGROUND_DEPTH",
    "NEAR_PLANE",
    "DEGENERATE_AREA_EPS",
    "MAX_FRAGMENTS_PER_CHUNK",
    "Fragments",
    "rasterize",
]

#: Depth stored at background pixels.
BACKGROUND_DEPTH: float = 0.0
#: Default near plane (camera-space Z, metres): triangles with a vertex at Z <= this are dropped.
NEAR_PLANE: float = 1e-3
#: Triangles whose projected area (pixels^2) is at most this are treated as degenerate.
DEGENERATE_AREA_EPS: float = 1e-12
#: Candidate (triangle, pixel) pairs evaluated at once, to bound peak memory: the triangles are
#: split where the running candidate count crosses multiples of it (so a chunk holds at most
#: about twice this, or one triangle's box).
MAX_FRAGMENTS_PER_CHUNK: int = 1 << 22

# Z-buffer keys: float32 depth bits in the high 32 bits, batch-local face index in the low 32.
_EMPTY_KEY: int = torch.iinfo(torch.int64).max
_FACE_BITS: int = 32
_FACE_MASK: int = (1 << _FACE_BITS) - 1

CameraParameter = Union[float, Sequence[float], Tensor]


@dataclass
class Fragments(DictLikeOutput):
    """Per-pixel result of :func:`rasterize`.

    Attributes:
        face_index: ``(B, H, W)`` long, index into ``faces`` of the visible triangle, ``-1`` for
            background.
        depth: ``(B, H, W)`` camera-space Z of the visible point, :data:`BACKGROUND_DEPTH` (0)
            for background.
        barycentric: ``(B, H, W, 3)`` perspective-correct barycentric coordinates of the visible
            point with respect to the face's three vertices (sum to 1; zeros for background):
            ``sum_k barycentric[..., k] * vertices[face[k]]`` is the 3D surface point.
        mask: ``(B, H, W)`` bool, True where a triangle is visible.
    """

    face_index: Tensor
    depth: Tensor
    barycentric: Tensor
    mask: Tensor


def _check_image_size(image_size: Sequence[int]) -> tuple[int, int]:
    try:
        height, width = (operator.index(side) for side in image_size)
    except (TypeError, ValueError):
        height = width = 0
    if height <= 0 or width <= 0:
        raise ValueError(f"image_size must be two positive ints (H, W), got {image_size!r}")
    return height, width


def _check_mesh(vertices_cam: Tensor, faces: Tensor) -> Tensor:
    is_tensor = isinstance(vertices_cam, Tensor)
    if not is_tensor or vertices_cam.ndim != 3 or vertices_cam.shape[-1] != 3:
        shape = tuple(vertices_cam.shape) if is_tensor else type(vertices_cam)
        raise ValueError(f"vertices_cam must have shape (B, V, 3), got {shape}")
    if not vertices_cam.is_floating_point():
        raise ValueError(f"vertices_cam must be a floating-point tensor, got {vertices_cam.dtype}")
    # One reduction instead of an elementwise isfinite: any NaN or inf makes the sum non-finite.
    if not bool(torch.isfinite(vertices_cam.sum())):
        raise ValueError("vertices_cam contains NaN or infinite values (or its sum overflows)")
    if not isinstance(faces, Tensor) or faces.ndim != 2 or faces.shape[-1] != 3:
        shape = tuple(faces.shape) if isinstance(faces, Tensor) else type(faces)
        raise ValueError(f"faces must have shape (F, 3), got {shape}")
    if faces.dtype.is_floating_point or faces.dtype == torch.bool:
        raise ValueError(f"faces must be an integer tensor, got {faces.dtype}")
    if faces.shape[0] >= 1 << (_FACE_BITS - 1):
        raise ValueError(f"faces has too many rows ({faces.shape[0]}), at most 2**31 - 1")
    faces = faces.to(device=vertices_cam.device, dtype=torch.long)
    num_vertices = vertices_cam.shape[1]
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= num_vertices):
        raise ValueError(f"faces must index vertices in [0, {num_vertices}), some do not")
    return faces


def _per_item_pair(
    value: CameraParameter, batch_size: int, name: str, like: Tensor, isotropic: bool
) -> Tensor:
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if tensor.ndim == 0:
        return tensor.expand(batch_size, 2)
    if isotropic and tensor.ndim == 1 and tensor.shape[0] in (1, batch_size):
        return tensor[:, None].expand(batch_size, 2)
    if not isotropic and tensor.ndim == 1 and tensor.shape[0] == 2:
        return tensor[None].expand(batch_size, 2)
    if tensor.ndim == 2 and tensor.shape[1] == 2 and tensor.shape[0] in (1, batch_size):
        return tensor.expand(batch_size, 2)
    expected = "a float, (B,), (B, 2) or (1, 2)" if isotropic else "(2,), (B, 2) or (1, 2)"
    raise ValueError(f"{name} must be {expected} with B={batch_size}, got {tuple(tensor.shape)}")


def _camera_intrinsics(
    focal_length: CameraParameter,
    principal_point: CameraParameter | None,
    image_size: Sequence[int],
    batch_size: int,
    like: Tensor,
) -> tuple[Tensor, Tensor]:
    """Validate camera arguments and return per-item ``(fx, fy)`` and ``(cx, cy)`` in pixels.

    Arguments:
        focal_length: float, ``(B,)`` (one focal per item), ``(B, 2)`` or ``(1, 2)`` as
            ``(fx, fy)``. For B = 2 a 1-D tensor of length 2 means one focal per item.
        principal_point: ``None`` (image centre ``(W / 2, H / 2)``), ``(2,)``, ``(B, 2)`` or
            ``(1, 2)`` as ``(cx, cy)`` in pixels.
        image_size: ``(H, W)``.
        batch_size: B.
        like: tensor whose dtype and device the results take.

    Returns:
        ``(focal (B, 2), principal_point (B, 2))``.
    """
    height, width = _check_image_size(image_size)
    focal = _per_item_pair(focal_length, batch_size, "focal_length", like, isotropic=True)
    if principal_point is None:
        centre = torch.tensor([width / 2.0, height / 2.0], dtype=like.dtype, device=like.device)
        principal = centre.expand(batch_size, 2)
    else:
        principal = _per_item_pair(
            principal_point, batch_size, "principal_point", like, isotropic=False
        )
    if not bool(torch.isfinite(focal).all()) or not bool((focal != 0).all()):
        raise ValueError("focal_length must be finite and non-zero")
    if not bool(torch.isfinite(principal).all()):
        raise ValueError("principal_point contains NaN or infinite values")
    return focal, principal


def _zbuffer_keys(
    vertices: Tensor,
    faces: Tensor,
    focal: Tensor,
    principal: Tensor,
    height: int,
    width: int,
    cull_backfaces: bool,
    near: float,
) -> Tensor:
    """Packed (depth, face) z-buffer ``(B * H * W,)`` int64; :data:`_EMPTY_KEY` = background.

    Data are kept as contiguous planes (one row per quantity, one column per vertex, face or
    candidate pixel): elementwise work and gathers along the last axis of 2-D tensors are far
    cheaper on CPU than on strided ``(..., 3)`` layouts.
    """
    batch_size, num_vertices, _ = vertices.shape
    num_faces = faces.shape[0]
    device = vertices.device
    keys = torch.full((batch_size * height * width,), _EMPTY_KEY, dtype=torch.long, device=device)
    if num_faces == 0:
        return keys

    x, y, z = vertices.unbind(-1)
    # Vertices at or behind the near plane project to NaN; every comparison with NaN is False,
    # so the faces that use them drop out of `keep` below.
    inv_z = torch.where(z > near, 1.0 / z, torch.nan)
    # Shifted by half a pixel so that pixel centres sit on integer coordinates.
    u = x * inv_z * focal[:, :1] + (principal[:, :1] - 0.5)
    v = y * inv_z * focal[:, 1:] + (principal[:, 1:] - 0.5)
    vertex_planes = torch.stack((u, v, inv_z), dim=0).view(3, -1)
    batch_vertex_offset = torch.arange(batch_size, device=device)[:, None] * num_vertices
    # Ordered batch-major, then corner, then face.
    corner_ids = (faces.t().reshape(1, -1) + batch_vertex_offset).view(-1)
    uv = vertex_planes[:2].index_select(1, corner_ids).view(2, batch_size, 3, num_faces)
    (u0, u1, u2), (v0, v1, v2) = uv[0].unbind(1), uv[1].unbind(1)

    x0 = torch.minimum(torch.minimum(u0, u1), u2).ceil_().clamp_min_(0)
    y0 = torch.minimum(torch.minimum(v0, v1), v2).ceil_().clamp_min_(0)
    x1 = torch.maximum(torch.maximum(u0, u1), u2).floor_().clamp_max_(width - 1)
    y1 = torch.maximum(torch.maximum(v0, v1), v2).floor_().clamp_max_(height - 1)
    area = (u1 - u0) * (v2 - v0) - (u2 - u0) * (v1 - v0)
    keep = (x1 >= x0) & (y1 >= y0) & (area.abs() > DEGENERATE_AREA_EPS)
    if cull_backfaces:
        keep &= _faces_camera(vertices, faces)
    kept = keep.view(-1).nonzero().squeeze(1)
    if kept.numel() == 0:
        return keys

    # From here on, one column per kept triangle.
    boxes = torch.stack((x0, y0, x1, y1), dim=0).view(4, -1).index_select(1, kept)
    box_x0, box_y0, box_x1, box_y1 = boxes
    batch = kept.div(num_faces, rounding_mode="floor")
    face = kept - batch * num_faces
    kept_corner_ids = faces.index_select(0, face).t() + batch * num_vertices
    corners = vertex_planes.index_select(1, kept_corner_ids.reshape(-1)).view(3, 3, -1)
    # Corners relative to the box corner (x0, y0) keep float32 edge functions precise.
    cu0, cu1, cu2 = (corners[0] - box_x0).unbind(0)
    cv0, cv1, cv2 = (corners[1] - box_y0).unbind(0)
    iz0, iz1, iz2 = corners[2].unbind(0)
    inv_area = 1.0 / ((cu1 - cu0) * (cv2 - cv0) - (cu2 - cu0) * (cv1 - cv0))
    # Screen-space weight of corner k = signed area of (corner k+1, corner k+2, pixel) / area, an
    # affine function of the pixel offset (dx, dy) from the box corner: rows (value at the box
    # corner, d/dx, d/dy) per corner, then the same for 1/Z, which is affine in screen space too.
    rows = []
    edges = (((cu1, cv1), (cu2, cv2)), ((cu2, cv2), (cu0, cv0)), ((cu0, cv0), (cu1, cv1)))
    for (su, sv), (eu, ev) in edges:
        rows += [(su * ev - sv * eu) * inv_area, (sv - ev) * inv_area, (eu - su) * inv_area]
    rows += [rows[j] * iz0 + rows[3 + j] * iz1 + rows[6 + j] * iz2 for j in range(3)]
    coefficients = torch.stack(rows, dim=0)  # (12, T)

    box_width = (box_x1 - box_x0 + 1).long()
    counts = box_width * (box_y1 - box_y0 + 1).long()
    pixel_base = batch * (height * width) + box_y0.long() * width + box_x0.long()
    integers = torch.stack((box_width, pixel_base, face), dim=0)  # (3, T)

    ends = counts.cumsum(0)
    total = int(ends[-1])
    bounds = [0, kept.numel()]
    if total > MAX_FRAGMENTS_PER_CHUNK:
        cuts = torch.arange(MAX_FRAGMENTS_PER_CHUNK, total, MAX_FRAGMENTS_PER_CHUNK, device=device)
        bounds = sorted({0, *torch.searchsorted(ends, cuts, right=True).tolist(), kept.numel()})
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        _scatter_chunk(keys, coefficients[:, lo:hi], integers[:, lo:hi], counts[lo:hi], width)
    return keys


def _faces_camera(vertices: Tensor, faces: Tensor) -> Tensor:
    """``(B, F)`` bool: the right-hand normal points towards the camera at the origin."""
    corners = vertices[:, faces]
    edge_a = corners[:, :, 1] - corners[:, :, 0]
    edge_b = corners[:, :, 2] - corners[:, :, 0]
    return (torch.linalg.cross(edge_a, edge_b) * corners[:, :, 0]).sum(-1) < 0


def _scatter_chunk(
    keys: Tensor, coefficients: Tensor, integers: Tensor, counts: Tensor, image_width: int
) -> None:
    """Test every candidate pixel of these triangles and fold the hits into ``keys`` in place.

    ``coefficients`` is ``(12, T)``: for corner weights 0..2 and 1/Z, (value at the box corner,
    d/dx, d/dy). ``integers`` is ``(3, T)``: box width, flat pixel id of the box corner, face
    index. ``counts`` ``(T,)`` is the number of pixels in each box.
    """
    device = keys.device
    owner = torch.repeat_interleave(torch.arange(counts.shape[0], device=device), counts)
    first = counts.cumsum(0) - counts
    per_candidate = torch.cat((integers, first[None]), dim=0).index_select(1, owner)
    box_width, pixel_base, face, first = per_candidate
    offset = torch.arange(owner.shape[0], device=device) - first
    dy = offset.div(box_width, rounding_mode="floor")
    dx = offset - dy * box_width
    coef = coefficients.index_select(1, owner)
    dx_f, dy_f = dx.to(coef.dtype), dy.to(coef.dtype)
    w0, w1, w2, inv_depth = (
        torch.addcmul(torch.addcmul(coef[3 * j], coef[3 * j + 1], dx_f), coef[3 * j + 2], dy_f)
        for j in range(4)
    )
    inside = torch.minimum(torch.minimum(w0, w1), w2) >= 0
    depth_bits = inv_depth.reciprocal_().float().view(torch.int32).long()
    candidate = torch.where(inside, (depth_bits << _FACE_BITS) | face, _EMPTY_KEY)
    pixel = pixel_base + dy * image_width + dx
    keys.scatter_reduce_(0, pixel, candidate, reduce="amin", include_self=True)


@dataclass
class _Hits:
    """Visible surface points, one column per foreground pixel (internal, shared with shading)."""

    pixel: Tensor  # (P,) flat index into B * H * W
    batch: Tensor  # (P,)
    face: Tensor  # (P,)
    vertex_ids: Tensor  # (3 corners, P) flat index into B * V
    corners: Tensor  # (3 coordinates, 3 corners, P) camera space
    barycentric: Tensor  # (3 corners, P) perspective-correct
    depth: Tensor  # (P,)


def _visible_surface(
    vertices: Tensor,
    faces: Tensor,
    focal: Tensor,
    principal: Tensor,
    keys: Tensor,
    height: int,
    width: int,
) -> tuple[Tensor, Tensor, _Hits]:
    """Decode the z-buffer: face index ``(B*H*W,)``, mask ``(B*H*W,)`` and the hits."""
    num_vertices = vertices.shape[1]
    mask = keys != _EMPTY_KEY
    face_index = torch.where(mask, keys & _FACE_MASK, -1)
    pixel = mask.nonzero().squeeze(1)
    face = face_index.index_select(0, pixel)
    batch = pixel.div(height * width, rounding_mode="floor")
    within = pixel - batch * (height * width)
    row = within.div(width, rounding_mode="floor")
    centre_x = (within - row * width).to(vertices.dtype) + 0.5
    centre_y = row.to(vertices.dtype) + 0.5
    vertex_ids = faces.index_select(0, face).t() + batch * num_vertices
    coordinates = vertices.reshape(-1, 3).t().contiguous()
    corners = coordinates.index_select(1, vertex_ids.reshape(-1)).view(3, 3, -1)
    intrinsics = torch.cat((focal, principal), dim=1).t().index_select(1, batch)  # (4, P)
    # Corner projections relative to the pixel centre.
    du = corners[0] / corners[2] * intrinsics[0] + (intrinsics[2] - centre_x)
    dv = corners[1] / corners[2] * intrinsics[1] + (intrinsics[3] - centre_y)
    # Signed area of (corner k+1, corner k+2, pixel centre) = screen-space weight of corner k.
    weights = torch.stack(
        (
            du[1] * dv[2] - dv[1] * du[2],
            du[2] * dv[0] - dv[2] * du[0],
            du[0] * dv[1] - dv[0] * du[1],
        ),
        dim=0,
    )
    perspective = weights / (weights.sum(0) * corners[2])
    inv_depth = perspective.sum(0)
    hits = _Hits(
        pixel=pixel,
        batch=batch,
        face=face,
        vertex_ids=vertex_ids,
        corners=corners,
        barycentric=perspective / inv_depth,
        depth=1.0 / inv_depth,
    )
    return face_index, mask, hits


def _rasterize(
    vertices_cam: Tensor,
    faces: Tensor,
    image_size: Sequence[int],
    focal_length: CameraParameter,
    principal_point: CameraParameter | None,
    cull_backfaces: bool,
    near: float,
) -> tuple[Fragments, _Hits]:
    faces = _check_mesh(vertices_cam, faces)
    height, width = _check_image_size(image_size)
    batch_size = vertices_cam.shape[0]
    focal, principal = _camera_intrinsics(
        focal_length, principal_point, (height, width), batch_size, vertices_cam
    )
    if not near > 0:
        raise ValueError(f"near must be positive, got {near}")

    with torch.no_grad():
        keys = _zbuffer_keys(
            vertices_cam.detach(), faces, focal, principal, height, width, cull_backfaces, near
        )
    face_index, mask, hits = _visible_surface(
        vertices_cam, faces, focal, principal, keys, height, width
    )
    num_pixels = keys.shape[0]
    barycentric = vertices_cam.new_zeros(num_pixels, 3)
    barycentric = barycentric.index_copy(0, hits.pixel, hits.barycentric.t())
    depth = vertices_cam.new_full((num_pixels,), BACKGROUND_DEPTH)
    depth = depth.index_copy(0, hits.pixel, hits.depth)
    shape = (batch_size, height, width)
    fragments = Fragments(
        face_index=face_index.view(shape),
        depth=depth.view(shape),
        barycentric=barycentric.view(*shape, 3),
        mask=mask.view(shape),
    )
    return fragments, hits


def rasterize(
    vertices_cam: Tensor,
    faces: Tensor,
    image_size: Sequence[int],
    focal_length: CameraParameter,
    principal_point: CameraParameter | None = None,
    *,
    cull_backfaces: bool = False,
    near: float = NEAR_PLANE,
) -> Fragments:
    """Rasterise a batch of triangle meshes with a z-buffer (see the module docstring).

    Arguments:
        vertices_cam: ``(B, V, 3)`` vertices in camera space (camera looks down ``+z``,
            ``x`` right, ``y`` down), float32 or float64, CPU or CUDA.
        faces: ``(F, 3)`` integer vertex indices shared by the batch.
        image_size: ``(H, W)`` in pixels.
        focal_length: float, ``(B,)``, ``(B, 2)`` or ``(1, 2)`` focal lengths in pixels.
        principal_point: ``(2,)``, ``(B, 2)`` or ``(1, 2)`` in pixels; ``None`` = image centre.
        cull_backfaces: drop triangles whose right-hand normal faces away from the camera.
        near: near plane; triangles with any vertex at ``Z <= near`` are dropped.

    Returns:
        :class:`Fragments` with ``face_index (B, H, W)``, ``depth (B, H, W)``,
        ``barycentric (B, H, W, 3)`` and ``mask (B, H, W)``.

    Example:
        >>> vertices = torch.tensor([[[-1.0, -1.0, 4.0], [1.0, -1.0, 4.0], [0.0, 1.0, 4.0]]])
        >>> out = rasterize(vertices, torch.tensor([[0, 1, 2]]), (8, 8), focal_length=8.0)
        >>> out.mask.sum().item(), out.face_index.max().item(), out.depth.max().item()
        (8, 0, 4.0)
    """
    fragments, _ = _rasterize(
        vertices_cam, faces, image_size, focal_length, principal_point, cull_backfaces, near
    )
    return fragments
