"""Frames per second of `prohmr.rendering.render_mesh` on a body-sized mesh, one CPU thread.

Renders a closed mesh of 6890 vertices / 13776 triangles (the default body model in its rest
pose when `prohmr.body` can build it, otherwise a deformed UV sphere with the same counts)
with ProHMR's camera (f = 5000 * res / 224, body filling 80% of the crop) at 64, 128 and
224 px, batch 1 and 16, and prints a markdown table. The reference is a dense rasteriser
written here (all pixels of a chunk's bounding box against all triangles of the chunk): it is
timed once per resolution at batch 1 and its face-index map is compared with the fast one.
SPEC §11 measured ~280 / 140 / 58 fps at 64 / 128 / 224 px for a batched PyTorch z-buffer on
this kind of machine (2 shared cores).

Run: `.venv/bin/python benchmarks/bench_render.py` (about 20 seconds).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable

import torch

from prohmr.constants import FOCAL_LENGTH, IMAGE_SIZE
from prohmr.rendering import render_mesh

RESOLUTIONS = (64, 128, 224)
BATCH_SIZES = (1, 16)
#: Seconds spent timing each (resolution, batch) cell of the fast renderer.
TIME_PER_CELL = 1.5
#: Fraction of the crop height the mesh spans (as in ProHMR crops).
CROP_FILL = 0.8
BODY_HEIGHT = 1.7
#: Triangles per chunk of the dense reference.
REFERENCE_CHUNK = 256
F64 = torch.float64


def uv_sphere(rings: int = 82, segments: int = 84) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed UV sphere: ``2 + rings * segments`` vertices, ``2 * rings * segments`` faces."""
    polar = torch.arange(1, rings + 1, dtype=F64) * math.pi / (rings + 1)
    azimuth = torch.arange(segments, dtype=F64) * 2 * math.pi / segments
    p, a = torch.meshgrid(polar, azimuth, indexing="ij")
    body = torch.stack((p.sin() * a.cos(), p.cos(), p.sin() * a.sin()), dim=-1).reshape(-1, 3)
    poles = torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]], dtype=F64)
    vertices = torch.cat((poles[:1], body, poles[1:]))
    top, bottom = 0, 1 + rings * segments

    def ring(r: int, s: int) -> int:
        return 1 + r * segments + s % segments

    faces = []
    for s in range(segments):
        faces.append((top, ring(0, s + 1), ring(0, s)))
        faces.append((bottom, ring(rings - 1, s), ring(rings - 1, s + 1)))
        for r in range(rings - 1):
            faces.append((ring(r, s), ring(r, s + 1), ring(r + 1, s)))
            faces.append((ring(r, s + 1), ring(r + 1, s + 1), ring(r + 1, s)))
    return vertices, torch.tensor(faces, dtype=torch.long)


def test_mesh() -> tuple[torch.Tensor, torch.Tensor, str]:
    """Vertices ``(V, 3)`` in metres (camera axes: y down, facing -z), centred; faces; a name."""
    try:
        from prohmr.body.model import create_body_model

        body = create_body_model()
        # A half turn about x turns SMPL's y-up, +z-facing body upright in camera axes.
        flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))[None, None]
        with torch.no_grad():
            output = body(flip, torch.eye(3).expand(1, 23, 3, 3), torch.zeros(1, 10))
        vertices, faces = output.vertices[0].double(), body.faces.long()
        description = "default body model, rest pose"
    except (ImportError, FileNotFoundError, OSError):
        vertices, faces = uv_sphere()
        # An elongated, bumpy body-sized blob so that triangle sizes vary as on a body.
        bumps = 1 + 0.15 * torch.sin(5 * vertices[:, 0]) * torch.cos(4 * vertices[:, 1])
        vertices = vertices * bumps[:, None] * torch.tensor([0.25, 0.85, 0.15], dtype=F64)
        description = "deformed UV sphere"
    vertices = vertices - (vertices.amax(0) + vertices.amin(0)) / 2
    vertices = vertices * (BODY_HEIGHT / (vertices[:, 1].amax() - vertices[:, 1].amin()))
    return vertices.float(), faces, description


def dense_reference(
    vertices: torch.Tensor, faces: torch.Tensor, size: int, focal: float
) -> torch.Tensor:
    """Face index ``(H, W)`` by testing pixel centres against every triangle, in chunks.

    Each chunk of triangles is tested against every pixel centre of the chunk's joint bounding
    box (all pixels x all triangles, with only that coarse cut to keep it affordable).
    """
    z = vertices[:, 2]
    u = vertices[:, 0] / z * focal + size / 2
    v = vertices[:, 1] / z * focal + size / 2
    best_depth = torch.full((size, size), math.inf)
    best_face = torch.full((size, size), -1, dtype=torch.long)
    for lo in range(0, faces.shape[0], REFERENCE_CHUNK):
        f = faces[lo : lo + REFERENCE_CHUNK]
        fu, fv, fz = u[f], v[f], z[f]  # (C, 3)
        x0, x1 = max(int(fu.min().floor()), 0), min(int(fu.max().ceil()), size)
        y0, y1 = max(int(fv.min().floor()), 0), min(int(fv.max().ceil()), size)
        if x1 <= x0 or y1 <= y0:
            continue
        py, px = torch.meshgrid(
            torch.arange(y0, y1) + 0.5, torch.arange(x0, x1) + 0.5, indexing="ij"
        )
        px, py = px.reshape(-1, 1), py.reshape(-1, 1)
        weights = []
        for k in range(3):
            a, b = (k + 1) % 3, (k + 2) % 3
            weights.append((fu[:, a] - px) * (fv[:, b] - py) - (fv[:, a] - py) * (fu[:, b] - px))
        w = torch.stack(weights, dim=-1)  # (P, C, 3), unnormalised
        w = w / w.sum(-1, keepdim=True)
        inside = (w >= 0).all(-1)
        depth = torch.where(inside, 1.0 / (w / fz).sum(-1), math.inf)
        chunk_depth, chunk_face = depth.min(dim=1)
        region = (slice(y0, y1), slice(x0, x1))
        closer = chunk_depth.view(y1 - y0, x1 - x0) < best_depth[region]
        best_depth[region] = torch.where(closer, chunk_depth.view_as(closer), best_depth[region])
        best_face[region] = torch.where(closer, chunk_face.view_as(closer) + lo, best_face[region])
    return best_face


def time_call(fn: Callable[[], object], budget: float) -> tuple[float, float]:
    """Seconds per call as (median CPU time, median wall time) over about ``budget`` seconds.

    CPU time of this single-threaded process is what an unloaded core would take; wall time
    adds whatever other processes on a shared machine took from us. Medians ignore outliers.
    """
    fn()
    cpu: list[float] = []
    wall: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < budget or len(wall) < 3:
        cpu_begin, wall_begin = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - cpu_begin)
        wall.append(time.perf_counter() - wall_begin)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    torch.set_num_threads(1)
    vertices, faces, description = test_mesh()
    print(f"mesh: {description}, {vertices.shape[0]} vertices, {faces.shape[0]} triangles")
    print("torch threads: 1\n")
    rows = [
        "| resolution | batch | fps (CPU time) | fps (wall) | dense reference fps (CPU time) "
        "| speed-up | face agreement |",
        "|---|---|---|---|---|---|---|",
    ]
    generator = torch.Generator().manual_seed(0)
    depth = FOCAL_LENGTH * BODY_HEIGHT / (CROP_FILL * IMAGE_SIZE)
    for size in RESOLUTIONS:
        focal = FOCAL_LENGTH * size / IMAGE_SIZE
        for batch_size in BATCH_SIZES:
            # Slightly different placements per item, as in a batch of synthetic crops.
            jitter = torch.rand(batch_size, 1, 3, generator=generator) - 0.5
            jitter = jitter * torch.tensor([0.2, 0.2, 2.0])
            batch = vertices + torch.tensor([0.0, 0.0, depth]) + jitter
            cpu, wall = time_call(
                lambda: render_mesh(batch, faces, (size, size), focal), TIME_PER_CELL
            )
            cells = f"| {size} | {batch_size} | {batch_size / cpu:.0f} | {batch_size / wall:.0f} |"
            if batch_size > 1:
                rows.append(f"{cells} | | |")
                continue
            start = time.process_time()
            reference = dense_reference(batch[0], faces, size, focal)
            reference_fps = 1.0 / (time.process_time() - start)
            fast = render_mesh(batch, faces, (size, size), focal).face_index[0]
            agreement = 100 * (fast == reference).double().mean().item()
            speed_up = 1.0 / cpu / reference_fps
            rows.append(f"{cells} {reference_fps:.2f} | {speed_up:.0f}x | {agreement:.2f}% |")
    print("\n".join(rows))
    print(
        "\nSPEC §11 (batched PyTorch z-buffer, 1 thread, this kind of machine): "
        "~280 / 140 / 58 fps at 64 / 128 / 224 px."
    )


if __name__ == "__main__":
    main()
