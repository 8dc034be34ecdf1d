"""`prohmr.rendering.rasterize` against per-pixel ray casting (Möller–Trumbore in numpy)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from prohmr.rendering import BACKGROUND_DEPTH, NEAR_PLANE, Fragments, rasterize
from prohmr.rendering import rasterizer as rasterizer_module

HEIGHT, WIDTH = 32, 40
FOCAL = (36.0, 31.0)
PRINCIPAL = (19.3, 15.7)
#: Möller–Trumbore's parallel-ray threshold (float64).
RAY_EPS = 1e-12
F64 = torch.float64
ONE_FACE = torch.tensor([[0, 1, 2]])


def ray_cast(vertices: np.ndarray, faces: np.ndarray, focal, principal, height: int, width: int):
    """Face index and depth (Z) of the nearest hit through every pixel centre, by brute force."""
    face_index = np.full((height, width), -1)
    depth = np.zeros((height, width))
    usable = [f for f in range(len(faces)) if (vertices[faces[f], 2] > NEAR_PLANE).all()]
    for i in range(height):
        for j in range(width):
            x = (j + 0.5 - principal[0]) / focal[0]
            y = (i + 0.5 - principal[1]) / focal[1]
            direction = np.array([x, y, 1.0])
            best = np.inf
            for f in usable:
                a, b, c = vertices[faces[f]]
                e1, e2 = b - a, c - a
                p = np.cross(direction, e2)
                det = e1 @ p
                if abs(det) < RAY_EPS:
                    continue
                s = -a  # the ray starts at the camera centre
                beta = (s @ p) / det
                q = np.cross(s, e1)
                gamma = (direction @ q) / det
                t = (e2 @ q) / det
                if beta < 0 or gamma < 0 or beta + gamma > 1 or t <= 0:
                    continue
                if t < best:
                    best, face_index[i, j] = t, f
            if np.isfinite(best):
                depth[i, j] = best  # the direction has unit z, so t is the depth
    return face_index, depth


def random_scene(seed: int, num_triangles: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping, slanted triangles in front of the camera, most of them crossing the view."""
    rng = np.random.default_rng(seed)
    centres = np.stack(
        [
            rng.uniform(-0.5, 0.5, num_triangles),
            rng.uniform(-0.5, 0.5, num_triangles),
            rng.uniform(2.0, 5.0, num_triangles),
        ],
        axis=-1,
    )
    offsets = rng.normal(size=(num_triangles, 3, 3)) * 0.8
    vertices = (centres[:, None] + offsets).reshape(-1, 3)
    vertices[:, 2] = np.maximum(vertices[:, 2], 1.0)
    faces = np.arange(3 * num_triangles).reshape(-1, 3)
    return vertices, faces


@functools.lru_cache(maxsize=None)
def reference_scene(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random scene and its ray-cast face index and depth (cached: the loop is slow)."""
    vertices, faces = random_scene(seed)
    return (vertices, faces, *ray_cast(vertices, faces, FOCAL, PRINCIPAL, HEIGHT, WIDTH))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_ray_casting(seed: int, dtype: torch.dtype, device: torch.device) -> None:
    vertices, faces, expected_face, expected_depth = reference_scene(seed)
    # The scene must exercise occlusion: several faces visible, overlaps resolved by depth.
    assert len(np.unique(expected_face[expected_face >= 0])) >= 4
    assert 0.2 < (expected_face >= 0).mean() < 0.95

    out = rasterize(
        torch.tensor(vertices, dtype=dtype, device=device)[None],
        torch.tensor(faces, device=device),
        (HEIGHT, WIDTH),
        torch.tensor([FOCAL], dtype=dtype),
        torch.tensor(PRINCIPAL, dtype=dtype),
    )
    assert out.face_index.dtype == torch.long and out.mask.dtype == torch.bool
    assert out.depth.dtype == dtype and out.barycentric.dtype == dtype
    face = out.face_index[0].cpu().numpy()
    depth = out.depth[0].cpu().double().numpy()
    assert (face == expected_face).mean() > 0.99
    both = (face == expected_face) & (face >= 0)
    assert np.abs(depth[both] - expected_depth[both]).max() < 1e-4
    assert (out.mask[0].cpu().numpy() == (face >= 0)).all()
    assert (depth[face < 0] == BACKGROUND_DEPTH).all()


def test_barycentrics_reproduce_hit_point(device: torch.device) -> None:
    vertices, faces = random_scene(3)
    vertices_t = torch.tensor(vertices, device=device)[None]
    faces_t = torch.tensor(faces, device=device)
    focal = torch.tensor([FOCAL], dtype=F64)
    principal = torch.tensor(PRINCIPAL, dtype=F64)
    out = rasterize(vertices_t, faces_t, (HEIGHT, WIDTH), focal, principal)
    rows, columns = torch.nonzero(out.mask[0], as_tuple=True)
    assert rows.numel() > 100
    bary = out.barycentric[0, rows, columns]
    corners = vertices_t[0][faces_t[out.face_index[0, rows, columns]]]  # (P, 3, 3)
    point = (bary[:, :, None] * corners).sum(1)
    # The 3D point lies on the ray through the pixel centre, at the reported depth.
    u = point[:, 0] / point[:, 2] * FOCAL[0] + PRINCIPAL[0]
    v = point[:, 1] / point[:, 2] * FOCAL[1] + PRINCIPAL[1]
    torch.testing.assert_close(u, columns.double() + 0.5, atol=1e-9, rtol=0)
    torch.testing.assert_close(v, rows.double() + 0.5, atol=1e-9, rtol=0)
    torch.testing.assert_close(point[:, 2], out.depth[0, rows, columns], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(bary.sum(-1), torch.ones_like(bary[:, 0]))
    assert bary.min() > -1e-9 and bary.max() < 1 + 1e-9
    assert (out.barycentric[0][~out.mask[0]] == 0).all()


def test_closed_mesh_silhouette(sphere_mesh, device: torch.device) -> None:
    unit_vertices, faces = sphere_mesh
    centre = torch.tensor([0.3, -0.2, 6.0], dtype=F64)
    vertices = (unit_vertices + centre).to(device)
    focal, size = 60.0, (48, 56)
    out = rasterize(vertices[None].float(), faces.to(device), size, focal)
    principal = torch.tensor([size[1] / 2, size[0] / 2], dtype=F64)

    # Every pixel whose ray meets the inscribed sphere is covered; none whose ray misses the
    # circumscribed (unit) sphere is.
    corners = unit_vertices[faces]
    normals = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    inner = ((normals / normals.norm(dim=-1, keepdim=True)) * corners[:, 0]).sum(-1).min()
    rows, columns = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    ray_x = (columns + 0.5 - principal[0]) / focal
    ray_y = (rows + 0.5 - principal[1]) / focal
    ray = torch.stack((ray_x, ray_y, torch.ones(size, dtype=F64)), dim=-1)
    ray = ray / ray.norm(dim=-1, keepdim=True)
    distance_to_centre = (centre - (ray @ centre)[..., None] * ray).norm(dim=-1)
    mask = out.mask[0].cpu()
    assert mask[distance_to_centre < inner - 1e-6].all()
    assert not mask[distance_to_centre > 1 + 1e-6].any()
    assert mask.sum() > 200

    # Projected vertices on the camera-facing side land inside the silhouette, at their depth.
    projected = vertices[:, :2] / vertices[:, 2:] * focal + principal.to(device)
    toward_camera = ((vertices - centre.to(device)) * -vertices).sum(-1) / vertices.norm(dim=-1)
    front = toward_camera > 0.8  # a few pixels inside the silhouette
    pixel = projected[front].floor().long().cpu()
    assert front.sum() > 30
    assert mask[pixel[:, 1], pixel[:, 0]].all()
    depth_at = out.depth[0].cpu()[pixel[:, 1], pixel[:, 0]].double()
    # Within a pixel of the vertex, the surface depth differs from the vertex depth by little.
    assert (depth_at - vertices[front, 2].cpu()).abs().max() < 0.1


def test_matches_geometry_projection_convention() -> None:
    geometry = pytest.importorskip("prohmr.geometry")
    # Covered pixels are exactly those whose centre (j + 0.5, i + 0.5) lies inside the triangle
    # that `perspective_projection` draws (principal point in pixels).
    generator = torch.Generator().manual_seed(0)
    spread, low = torch.tensor([4.0, 4.0, 2.0]), torch.tensor([2.0, 2.0, 1.0])
    triangles = torch.rand(6, 3, 3, generator=generator, dtype=F64) * spread - low
    translation = torch.tensor([0.1, -0.2, 6.0], dtype=F64)
    focal = torch.tensor([[70.0, 65.0]], dtype=F64)
    principal = torch.tensor([[30.5, 27.25]], dtype=F64)
    rows, columns = torch.meshgrid(torch.arange(56), torch.arange(64), indexing="ij")
    centre_x, centre_y = columns.double() + 0.5, rows.double() + 0.5
    covered = 0
    for triangle in triangles:
        corners = geometry.perspective_projection(
            triangle[None], translation[None], focal, principal
        )[0]
        signs, distances = [], []
        for k in range(3):
            start, end = corners[k], corners[(k + 1) % 3]
            direction = end - start
            cross = direction[0] * (centre_y - start[1]) - direction[1] * (centre_x - start[0])
            signs.append(cross)
            distances.append(cross.abs() / direction.norm())
        signs = torch.stack(signs)
        inside = (signs >= 0).all(0) | (signs <= 0).all(0)
        away_from_edges = torch.stack(distances).min(0).values > 1e-6
        out = rasterize((triangle + translation)[None], ONE_FACE, (56, 64), focal, principal)
        assert torch.equal(out.mask[0][away_from_edges], inside[away_from_edges])
        covered += int(inside.sum())
    assert covered > 300


def test_batch_equals_single_renders(device: torch.device) -> None:
    scenes = [random_scene(seed) for seed in (4, 5, 6)]
    stacked = np.stack([v for v, _ in scenes])
    vertices = torch.tensor(stacked, dtype=torch.float32, device=device)
    faces = torch.tensor(scenes[0][1], device=device)
    focal = torch.tensor([[36.0, 31.0], [40.0, 40.0], [30.0, 35.0]])
    principal = torch.tensor([[19.3, 15.7], [20.0, 16.0], [17.0, 18.5]])
    batched = rasterize(vertices, faces, (HEIGHT, WIDTH), focal, principal)
    assert batched.face_index.shape == (3, HEIGHT, WIDTH)
    assert batched.barycentric.shape == (3, HEIGHT, WIDTH, 3)
    for b in range(3):
        item = slice(b, b + 1)
        single = rasterize(vertices[item], faces, (HEIGHT, WIDTH), focal[item], principal[b])
        assert torch.equal(batched.face_index[b], single.face_index[0])
        assert torch.equal(batched.mask[b], single.mask[0])
        torch.testing.assert_close(batched.depth[b], single.depth[0])
        torch.testing.assert_close(batched.barycentric[b], single.barycentric[0])
    assert not torch.equal(batched.face_index[0], batched.face_index[1])


def test_chunked_z_test_matches_single_pass(sphere_mesh, monkeypatch: pytest.MonkeyPatch) -> None:
    vertices, faces = sphere_mesh
    vertices = (vertices + torch.tensor([0.0, 0.0, 3.0], dtype=F64))[None].repeat(2, 1, 1)
    vertices[1, :, 0] += 0.4
    reference = rasterize(vertices, faces, (40, 48), 40.0)
    monkeypatch.setattr(rasterizer_module, "MAX_FRAGMENTS_PER_CHUNK", 97)
    chunked = rasterize(vertices, faces, (40, 48), 40.0)
    assert torch.equal(reference.face_index, chunked.face_index)
    torch.testing.assert_close(reference.depth, chunked.depth, rtol=0, atol=0)


def test_near_plane_drops_whole_triangles() -> None:
    # Face 0 crosses the near plane (dropped entirely, even where it would hide face 1).
    vertices = torch.tensor(
        [
            [[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, -1.0]],
            [[-1.0, -1.0, 3.0], [1.0, -1.0, 3.0], [0.0, 1.0, 3.0]],
        ]
    ).view(1, 6, 3)
    out = rasterize(vertices, torch.tensor([[0, 1, 2], [3, 4, 5]]), (16, 16), 8.0)
    assert out.mask.any()
    assert set(out.face_index[out.mask].tolist()) == {1}
    torch.testing.assert_close(out.depth[out.mask], torch.full_like(out.depth[out.mask], 3.0))


def test_empty_scenes(dtype: torch.dtype, device: torch.device) -> None:
    triangle = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, 2.0]], dtype=dtype)
    behind = (triangle * torch.tensor([1.0, 1.0, -1.0], dtype=dtype))[None].to(device)
    off_screen = (triangle + torch.tensor([50.0, 0.0, 0.0], dtype=dtype))[None].to(device)
    cases = [
        (behind, ONE_FACE),
        (off_screen, ONE_FACE),
        (behind, torch.zeros(0, 3, dtype=torch.long)),
    ]
    for vertices, faces in cases:
        out = rasterize(vertices.repeat(2, 1, 1), faces.to(device), (8, 12), 10.0)
        assert out.face_index.shape == (2, 8, 12)
        assert (out.face_index == -1).all() and not out.mask.any()
        assert (out.depth == BACKGROUND_DEPTH).all() and (out.barycentric == 0).all()
        assert out.depth.dtype == dtype and out.depth.device.type == device.type


def test_ties_and_backface_culling(sphere_mesh) -> None:
    vertices, faces = sphere_mesh
    vertices = (vertices + torch.tensor([0.0, 0.0, 4.0], dtype=F64))[None]
    # A duplicated face ties in depth everywhere: the lower index wins, deterministically.
    doubled = torch.cat((faces, faces))
    out = rasterize(vertices, doubled, (32, 32), 30.0)
    assert out.mask.any() and out.face_index.max() < faces.shape[0]

    plain = rasterize(vertices, faces, (32, 32), 30.0)
    culled = rasterize(vertices, faces, (32, 32), 30.0, cull_backfaces=True)
    assert torch.equal(plain.face_index, culled.face_index)
    # With the winding reversed, culling keeps only the far side of the sphere.
    inside_out = rasterize(vertices, faces.flip(-1), (32, 32), 30.0, cull_backfaces=True)
    assert torch.equal(inside_out.mask, plain.mask)
    farther = inside_out.depth[plain.mask] > plain.depth[plain.mask] + 0.5
    assert farther.double().mean() > 0.9


def test_depth_and_barycentrics_are_differentiable() -> None:
    vertices = torch.tensor(
        [[[-1.0, -1.0, 3.0], [1.5, -1.0, 4.0], [0.0, 1.2, 5.0]]], dtype=F64, requires_grad=True
    )
    out = rasterize(vertices, ONE_FACE, (12, 12), 10.0)
    interior = out.mask.clone()
    interior[0, :, [0, -1]] = False
    assert interior.sum() > 10

    def visible(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fragments = rasterize(v, ONE_FACE, (12, 12), 10.0)
        return fragments.depth[interior], fragments.barycentric[interior]

    # Tiny perturbations do not change which pixels are covered away from the edges.
    assert torch.autograd.gradcheck(visible, (vertices,), eps=1e-7, atol=1e-6)


def test_outputs_read_like_dicts() -> None:
    vertices = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]])
    out = rasterize(vertices, ONE_FACE, (4, 4), 4.0)
    assert isinstance(out, Fragments)
    assert out["mask"] is out.mask
    assert set(dict(out)) == {"face_index", "depth", "barycentric", "mask"}
    with pytest.raises(KeyError):
        out["image"]


V = torch.zeros(1, 5, 3)
F = torch.zeros(1, 3, dtype=torch.long)


@pytest.mark.parametrize(
    "vertices, faces, image_size, focal, principal, match",
    [
        (torch.zeros(5, 3), F, (4, 4), 1.0, None, "vertices_cam"),
        (torch.zeros(1, 5, 2), F, (4, 4), 1.0, None, "vertices_cam"),
        (torch.zeros(1, 5, 3, dtype=torch.long), F, (4, 4), 1.0, None, "vertices_cam"),
        (torch.full((1, 5, 3), float("nan")), F, (4, 4), 1.0, None, "NaN"),
        (V, torch.zeros(1, 4, dtype=torch.long), (4, 4), 1.0, None, "faces"),
        (V, torch.zeros(1, 3), (4, 4), 1.0, None, "faces"),
        (V, torch.tensor([[0, 1, 5]]), (4, 4), 1.0, None, "faces"),
        (V, torch.tensor([[0, 1, -1]]), (4, 4), 1.0, None, "faces"),
        (V, F, (4, 0), 1.0, None, "image_size"),
        (V, F, (4, 4, 3), 1.0, None, "image_size"),
        (V, F, (4.5, 4), 1.0, None, "image_size"),
        (V, F, (4, 4), torch.ones(3, 2), None, "focal_length"),
        (V, F, (4, 4), 0.0, None, "focal_length"),
        (V, F, (4, 4), 1.0, torch.ones(3), "principal_point"),
        (torch.zeros(2, 5, 3), F, (4, 4), 1.0, torch.ones(3, 2), "principal_point"),
    ],
)
def test_invalid_inputs_raise(vertices, faces, image_size, focal, principal, match) -> None:
    with pytest.raises(ValueError, match=match):
        rasterize(vertices, faces, image_size, focal, principal)


def test_invalid_near_plane_raises() -> None:
    with pytest.raises(ValueError, match="near"):
        rasterize(V, F, (4, 4), 1.0, near=0.0)
