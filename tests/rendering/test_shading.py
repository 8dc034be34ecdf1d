"""`render_mesh`, normals, face-value lookup and `overlay` against hand-computed shading."""

from __future__ import annotations

import math

import pytest
import torch

from prohmr.rendering import (
    DEFAULT_MESH_COLOR,
    RenderOutput,
    face_normals,
    gather_face_values,
    overlay,
    rasterize,
    render_mesh,
    vertex_normals,
)

SIZE = (24, 28)
FOCAL = 30.0
F64 = torch.float64


def quad() -> tuple[torch.Tensor, torch.Tensor]:
    """A slanted square made of two triangles (faces 0 and 1), filling the middle of the view."""
    corners = [[-1.0, -1.0, 4.0], [1.0, -1.0, 5.0], [1.0, 1.0, 5.0], [-1.0, 1.0, 4.0]]
    return torch.tensor([corners], dtype=F64), torch.tensor([[0, 1, 2], [0, 2, 3]])


def expected_lambert(vertices: torch.Tensor, light: torch.Tensor) -> float:
    """cos between the camera-facing plane normal and the light, computed from scratch."""
    a, b, c = vertices[0, 0], vertices[0, 1], vertices[0, 2]
    normal = torch.linalg.cross(b - a, c - a)
    normal = normal / normal.norm()
    if normal @ a > 0:  # face the camera at the origin
        normal = -normal
    return max(0.0, float(normal @ (light / light.norm())))


def colour_columns(rgb: torch.Tensor, count: int) -> torch.Tensor:
    return rgb.to(F64)[:, None].expand(3, count)


def test_flat_lambertian_shading_and_background(dtype: torch.dtype, device: torch.device) -> None:
    vertices, faces = quad()
    light = torch.tensor([0.3, -0.4, -1.0], dtype=F64)
    colors = torch.tensor([[0.9, 0.5, 0.2], [0.1, 0.6, 0.8]])
    out = render_mesh(
        vertices.to(dtype=dtype, device=device),
        faces.to(device),
        SIZE,
        FOCAL,
        face_colors=colors.to(device),
        light_direction=light,
        ambient=0.25,
        diffuse=0.6,
        background=(0.0, 0.2, 1.0),
    )
    assert isinstance(out, RenderOutput)
    assert out.image.shape == (1, 3, *SIZE) and out.image.dtype == dtype
    shade = 0.25 + 0.6 * expected_lambert(vertices, light)
    assert 0.5 < shade < 0.85
    image = out.image[0].cpu().double()
    for face in (0, 1):
        pixels = out.face_index[0].cpu() == face
        assert pixels.sum() > 20
        expected = colour_columns(colors[face] * shade, int(pixels.sum()))
        torch.testing.assert_close(image[:, pixels], expected, atol=1e-6, rtol=0)
    background = ~out.mask[0].cpu()
    assert background.sum() > 100
    expected = colour_columns(torch.tensor([0.0, 0.2, 1.0]), int(background.sum()))
    torch.testing.assert_close(image[:, background], expected)
    fragments = rasterize(vertices.to(dtype=dtype, device=device), faces.to(device), SIZE, FOCAL)
    assert torch.equal(out.depth, fragments.depth)


def test_two_sided_lighting_ignores_winding() -> None:
    vertices, faces = quad()
    front = render_mesh(vertices, faces, SIZE, FOCAL)
    flipped = render_mesh(vertices, faces.flip(-1), SIZE, FOCAL)
    smooth_flipped = render_mesh(vertices, faces.flip(-1), SIZE, FOCAL, smooth_shading=True)
    torch.testing.assert_close(front.image, flipped.image)
    # A flat quad's vertex normals equal its face normal, so smooth shading agrees.
    torch.testing.assert_close(front.image, smooth_flipped.image)


def test_light_behind_surface_leaves_ambient_only() -> None:
    vertices, faces = quad()
    out = render_mesh(
        vertices, faces, SIZE, FOCAL, light_direction=(0.0, 0.0, 1.0), ambient=0.3, diffuse=0.7
    )
    expected = colour_columns(torch.tensor(DEFAULT_MESH_COLOR) * 0.3, int(out.mask.sum()))
    torch.testing.assert_close(out.image[0][:, out.mask[0]], expected)


def test_vertex_colors_are_interpolated_with_barycentrics() -> None:
    vertices, faces = quad()
    vertex_colors = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], dtype=F64
    )
    out = render_mesh(
        vertices, faces, SIZE, FOCAL, vertex_colors=vertex_colors, ambient=1.0, diffuse=0.0
    )
    fragments = rasterize(vertices, faces, SIZE, FOCAL)
    rows, columns = torch.nonzero(fragments.mask[0], as_tuple=True)
    corner_colors = vertex_colors[faces[fragments.face_index[0, rows, columns]]]  # (P, 3, 3)
    expected = (fragments.barycentric[0, rows, columns][:, :, None] * corner_colors).sum(1)
    torch.testing.assert_close(out.image[0, :, rows, columns].t(), expected)
    assert expected.std(0).min() > 0.05  # the colours really vary across the quad


def test_per_item_colors_and_backgrounds() -> None:
    vertices, faces = quad()
    vertices = torch.cat((vertices, vertices + torch.tensor([0.5, 0.0, 0.0], dtype=F64)))
    face_colors = torch.rand(2, 2, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    background = torch.rand(2, 3, *SIZE, generator=torch.Generator().manual_seed(1), dtype=F64)
    batched = render_mesh(
        vertices, faces, SIZE, FOCAL, face_colors=face_colors, background=background
    )
    for b in range(2):
        single = render_mesh(
            vertices[b : b + 1],
            faces,
            SIZE,
            FOCAL,
            face_colors=face_colors[b],
            background=background[b],
        )
        torch.testing.assert_close(batched.image[b], single.image[0])
        unmasked = ~batched.mask[b]
        torch.testing.assert_close(batched.image[b][:, unmasked], background[b][:, unmasked])
    assert not torch.equal(batched.mask[0], batched.mask[1])
    black = render_mesh(vertices, faces, SIZE, FOCAL).image.permute(0, 2, 3, 1)
    assert (black[~batched.mask] == 0).all()


def test_smooth_shading_follows_the_sphere(sphere_mesh) -> None:
    unit_vertices, faces = sphere_mesh
    centre = torch.tensor([0.0, 0.0, 5.0], dtype=F64)
    vertices = (unit_vertices + centre)[None]
    light = torch.tensor([0.0, 0.0, -1.0], dtype=F64)
    white = torch.ones_like(unit_vertices)
    options = dict(light_direction=light, ambient=0.0, diffuse=1.0, vertex_colors=white)
    flat = render_mesh(vertices, faces, (40, 40), 50.0, **options)
    smooth = render_mesh(vertices, faces, (40, 40), 50.0, smooth_shading=True, **options)
    fragments = rasterize(vertices, faces, (40, 40), 50.0)
    rows, columns = torch.nonzero(fragments.mask[0], as_tuple=True)
    # Exact sphere normal at the hit point (the mesh is within 1% of the sphere).
    corners = vertices[0][faces[fragments.face_index[0, rows, columns]]]
    point = (fragments.barycentric[0, rows, columns][:, :, None] * corners).sum(1)
    normal = (point - centre) / (point - centre).norm(dim=-1, keepdim=True)
    expected = (normal @ light).clamp_min(0)
    smooth_error = (smooth.image[0, 0, rows, columns] - expected).abs()
    flat_error = (flat.image[0, 0, rows, columns] - expected).abs()
    assert smooth_error.mean() < 0.3 * flat_error.mean()
    assert smooth_error.max() < 0.02


def test_normals(sphere_mesh) -> None:
    unit_vertices, faces = sphere_mesh
    normals = vertex_normals(unit_vertices[None] * 2.0 + 1.0, faces)[0]
    angle = torch.acos((normals * unit_vertices).sum(-1).clamp(-1, 1))
    assert angle.max() < math.radians(1.0)
    triangle = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]], dtype=F64)
    expected = torch.tensor([[0.0, -1.0, 0.0]], dtype=F64)
    torch.testing.assert_close(face_normals(triangle, torch.tensor([[0, 1, 2]])), expected)


def test_gather_face_values_matches_loop() -> None:
    vertices, faces = quad()
    fragments = rasterize(vertices, faces, SIZE, FOCAL)
    labels = torch.tensor([5, 9])
    image = gather_face_values(fragments.face_index, labels, background=-1)
    per_item = gather_face_values(
        fragments.face_index, labels[None] * 2, background=-1, per_item=True
    )
    for i in range(SIZE[0]):
        for j in range(SIZE[1]):
            face = int(fragments.face_index[0, i, j])
            assert image[0, i, j] == (labels[face] if face >= 0 else -1)
            assert per_item[0, i, j] == (2 * labels[face] if face >= 0 else -1)
    assert set(image.unique().tolist()) == {-1, 5, 9}


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
def test_overlay(alpha: float) -> None:
    vertices, faces = quad()
    render = render_mesh(vertices, faces, SIZE, FOCAL)
    photo = torch.rand(3, *SIZE, generator=torch.Generator().manual_seed(2), dtype=F64)
    blended = overlay(photo, render, alpha=alpha)
    mask = render.mask[0]
    assert blended.shape == photo.shape
    torch.testing.assert_close(blended[:, ~mask], photo[:, ~mask])
    expected = alpha * render.image[0][:, mask] + (1 - alpha) * photo[:, mask]
    torch.testing.assert_close(blended[:, mask], expected)
    torch.testing.assert_close(overlay(photo[None], render, alpha=alpha)[0], blended)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(face_colors=torch.ones(2, 3), vertex_colors=torch.ones(4, 3)), "at most one"),
        (dict(face_colors=torch.ones(3, 3)), "face_colors"),
        (dict(vertex_colors=torch.ones(1, 5, 3)), "vertex_colors"),
        (dict(light_direction=(0.0, 0.0, 0.0)), "light_direction"),
        (dict(light_direction=(0.0, 1.0)), "light_direction"),
        (dict(background=torch.zeros(3, 5, 5)), "background"),
    ],
)
def test_invalid_render_arguments(kwargs: dict, match: str) -> None:
    vertices, faces = quad()
    with pytest.raises(ValueError, match=match):
        render_mesh(vertices, faces, SIZE, FOCAL, **kwargs)


def test_invalid_overlay_arguments() -> None:
    vertices, faces = quad()
    render = render_mesh(vertices, faces, SIZE, FOCAL)
    with pytest.raises(ValueError, match="image"):
        overlay(torch.zeros(3, 5, 5), render)
    with pytest.raises(ValueError, match="alpha"):
        overlay(torch.zeros(3, *SIZE), render, alpha=1.5)
