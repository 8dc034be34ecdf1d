"""Mesh machinery for the procedural body: box modelling, subdivision and refinement.

The procedural body is modelled like an artist's low-poly "box model": a closed quad cage
grows by *extrusions* (a disk of faces is lifted along a path of cross-section rings, its
faces becoming the cap), is smoothed by Catmull–Clark subdivision, triangulated, and
refined by longest-edge bisection to an exact vertex count. Every step maps a closed,
consistently oriented genus-0 manifold to another one, so the topology is right by
construction; :func:`topology_report` checks it anyway.

Private to :mod:`prohmr.body.procedural`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse

__all__ = [
    "Ring",
    "QuadMesh",
    "catmull_clark",
    "triangulate",
    "split_longest_edges",
    "vertex_normals",
    "tangential_relaxation",
    "vertex_adjacency",
    "topology_report",
]

#: Guards divisions by lengths that are zero only for degenerate input.
_EPS: float = 1e-12


@dataclass(frozen=True)
class Ring:
    """One cross-section of an extruded tube: a (super)ellipse in the plane (e1, e2).

    The four radii are the half-axes towards +e1, -e1, +e2 and -e2, so a section can be
    lopsided (a flat sole, a chin). ``squareness`` is the superellipse exponent (2 = ellipse,
    larger = boxier).
    """

    center: tuple[float, float, float]
    e1: tuple[float, float, float]
    e2: tuple[float, float, float]
    radii: tuple[float, float, float, float]
    squareness: float = 2.0

    def points(self, theta: np.ndarray, rho: np.ndarray | float = 1.0) -> np.ndarray:
        """Points at angles ``theta (n,)`` and radial fractions ``rho`` -> ``(n, 3)``."""
        cos, sin = np.cos(theta), np.sin(theta)
        exponent = 2.0 / self.squareness
        a = np.sign(cos) * np.abs(cos) ** exponent
        b = np.sign(sin) * np.abs(sin) ** exponent
        r1p, r1n, r2p, r2n = self.radii
        u = np.where(a >= 0, r1p, r1n) * a * rho
        v = np.where(b >= 0, r2p, r2n) * b * rho
        return (np.asarray(self.center) + u[:, None] * np.asarray(self.e1)
                + v[:, None] * np.asarray(self.e2))


class QuadMesh:
    """A closed quad mesh under construction, with a string tag per face.

    Faces are counter-clockwise seen from outside. Tags name the part a face was built for
    (e.g. ``"l_arm3"``) and are inherited through subdivision, so later steps can find the
    faces of a part without relying on indices.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, tags: Sequence[str]) -> None:
        self.vertices = np.asarray(vertices, dtype=np.float64)
        self.faces = np.asarray(faces, dtype=np.int64)
        self.tags = np.asarray(tags, dtype=object)

    @classmethod
    def closed_tube(cls, rings: Sequence[Ring], m: int, tag: str) -> QuadMesh:
        """A tube of ``len(rings)`` rings of ``4 m`` vertices closed by two m x m grid caps.

        The rings share the parametrisation of the boundary of the square ``[-1, 1]^2``
        (first coordinate along e1, second along e2); the caps are that square's grid, placed
        by :func:`_disk_points`. The tube runs along e1 x e2.
        """
        grid = np.linspace(-1.0, 1.0, m + 1)
        uu, ww = np.meshgrid(grid, grid, indexing="ij")
        square = np.stack([uu.ravel(), ww.ravel()], axis=1)
        boundary = _square_boundary(m)
        n_ring = len(boundary)
        ring_theta = np.arctan2(square[boundary, 1], square[boundary, 0])
        vertices = [ring.points(ring_theta) for ring in rings]
        faces: list[list[int]] = []
        tags: list[str] = []
        for k in range(len(rings) - 1):
            for i in range(n_ring):
                j = (i + 1) % n_ring
                a, b = k * n_ring + i, k * n_ring + j
                faces.append([a, b, b + n_ring, a + n_ring])
                tags.append(f"{tag}{k}")
        # Cap vertices: boundary ones are the end rings, interior ones are new.
        offset = len(rings) * n_ring
        for end, ring in ((0, rings[0]), (len(rings) - 1, rings[-1])):
            index = np.full(len(square), -1)
            index[boundary] = end * n_ring + np.arange(n_ring)
            interior = np.flatnonzero(index < 0)
            index[interior] = offset + np.arange(len(interior))
            offset += len(interior)
            vertices.append(_disk_points(ring, square[interior]))
            for i in range(m):
                for j in range(m):
                    quad = [index[i * (m + 1) + j], index[(i + 1) * (m + 1) + j],
                            index[(i + 1) * (m + 1) + j + 1], index[i * (m + 1) + j + 1]]
                    # The boundary loop runs counter-clockwise in (e1, e2): the top cap
                    # keeps that orientation, the bottom cap is reversed.
                    faces.append(quad if end else quad[::-1])
                    tags.append(f"{tag}_{'top' if end else 'bottom'}")
        mesh = cls(np.concatenate(vertices), np.array(faces), tags)
        # Walls between consecutive rings must face outwards; flip all if they do not.
        if mesh.signed_volume() < 0:
            mesh.faces = mesh.faces[:, ::-1].copy()
        return mesh

    def signed_volume(self) -> float:
        """Volume enclosed by the mesh (positive when faces point outwards)."""
        tri = triangulate(self.vertices, self.faces)
        a, b, c = (self.vertices[tri[:, k]] for k in range(3))
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)

    def select(self, prefix: str) -> np.ndarray:
        """Indices of the faces whose tag starts with ``prefix``."""
        return np.flatnonzero([str(t).startswith(prefix) for t in self.tags])

    def face_centers(self, faces: np.ndarray | None = None) -> np.ndarray:
        """Centroids ``(N, 3)`` of the given faces (all by default)."""
        faces = self.faces if faces is None else self.faces[faces]
        return self.vertices[faces].mean(axis=1)

    def face_normals(self, faces: np.ndarray | None = None) -> np.ndarray:
        """Unit normals ``(N, 3)`` of the given faces (from their diagonals)."""
        quads = self.vertices[self.faces if faces is None else self.faces[faces]]
        normal = np.cross(quads[:, 2] - quads[:, 0], quads[:, 3] - quads[:, 1])
        return normal / (np.linalg.norm(normal, axis=1, keepdims=True) + _EPS)

    def boundary_loop(self, patch: np.ndarray) -> np.ndarray:
        """Ordered boundary vertices of a disk of faces, in the faces' orientation."""
        quads = self.faces[patch]
        edges = {(int(q[i]), int(q[(i + 1) % 4])) for q in quads for i in range(4)}
        following = {a: b for a, b in edges if (b, a) not in edges}
        if not following:
            raise ValueError("patch has no boundary (it is the whole mesh)")
        start = min(following)
        loop = [start]
        while following[loop[-1]] != start:
            loop.append(following[loop[-1]])
            if len(loop) > len(following):
                raise ValueError("patch boundary is not a single loop")
        if len(loop) != len(following):
            raise ValueError("patch boundary is not a single loop")
        return np.array(loop)

    def extrude(
        self,
        patch: Sequence[int],
        frame: tuple[Sequence[float], Sequence[float]],
        rings: Sequence[Ring],
        tag: str,
        uniformity: float = 0.0,
    ) -> np.ndarray:
        """Lift a disk of faces along ``rings``; the faces become the end cap.

        Each boundary vertex of the patch gets a normalised angle, measured in ``frame``
        (two unit vectors spanning the patch) after scaling the patch to a square; every new
        ring places its vertices at those angles (blended towards evenly spaced angles by
        ``uniformity`` in [0, 1]). Interior vertices of the patch move with the cap.

        *Returns*
            the face indices of the cap (the patch, now at the end of the tube).
        """
        patch = np.asarray(patch, dtype=np.int64)
        loop = self.boundary_loop(patch)
        e1, e2 = (np.asarray(e, dtype=np.float64) for e in frame)
        patch_vertices = np.unique(self.faces[patch])
        center = self.vertices[loop].mean(axis=0)
        rel = self.vertices[patch_vertices] - center
        half1 = np.abs(rel @ e1).max() + _EPS
        half2 = np.abs(rel @ e2).max() + _EPS
        coords = np.stack([rel @ e1 / half1, rel @ e2 / half2], axis=1)
        position = {int(v): i for i, v in enumerate(patch_vertices)}
        loop_coords = coords[[position[int(v)] for v in loop]]
        theta = np.unwrap(np.arctan2(loop_coords[:, 1], loop_coords[:, 0]))
        n = len(loop)
        direction = np.sign(theta[-1] - theta[0])
        steps = theta[0] + direction * 2.0 * np.pi * np.arange(n) / n
        # Best rotation of the even spacing onto the measured angles (circular mean).
        shift = np.angle(np.mean(np.exp(1j * (theta - steps))))
        theta = theta + uniformity * (steps + shift - theta)

        new_rings = []
        base = len(self.vertices)
        points = []
        for k, ring in enumerate(rings):
            points.append(ring.points(theta))
            new_rings.append(base + k * n + np.arange(n))
        count = base + len(rings) * n
        interior = np.setdiff1d(patch_vertices, loop)
        remap = {int(v): int(new_rings[-1][i]) for i, v in enumerate(loop)}
        if len(interior):
            inner = coords[[position[int(v)] for v in interior]]
            points.append(_disk_points(rings[-1], inner))
            remap.update({int(v): count + i for i, v in enumerate(interior)})
        self.vertices = np.concatenate([self.vertices, *points])

        levels = [loop, *new_rings]
        walls = []
        for k in range(len(rings)):
            below, above = levels[k], levels[k + 1]
            for i in range(n):
                j = (i + 1) % n
                walls.append([below[i], below[j], above[j], above[i]])
        self.faces[patch] = np.vectorize(remap.__getitem__)(self.faces[patch])
        self.tags[patch] = f"{tag}_cap"
        wall_tags = [f"{tag}{k}" for k in range(len(rings)) for _ in range(n)]
        self.faces = np.concatenate([self.faces, np.array(walls, dtype=np.int64)])
        self.tags = np.concatenate([self.tags, np.asarray(wall_tags, dtype=object)])
        return patch

    def displace(self, offsets: np.ndarray) -> None:
        """Add ``offsets (V, 3)`` to the vertices (used for sculpting bumps)."""
        self.vertices = self.vertices + offsets


def _square_boundary(m: int) -> np.ndarray:
    """Indices (into the row-major (m+1)^2 grid) of the square's boundary, counter-clockwise."""
    side = m + 1
    bottom = [i * side for i in range(m)]  # w = -1, u increasing
    right = [m * side + j for j in range(m)]  # u = +1
    top = [(m - i) * side + m for i in range(m)]  # w = +1, u decreasing
    left = [m - j for j in range(m)]  # u = -1
    return np.array(bottom + right + top + left)


def _disk_points(ring: Ring, square: np.ndarray) -> np.ndarray:
    """Map points of the square ``[-1, 1]^2`` into the ring's (super)ellipse, concentrically."""
    rho = np.abs(square).max(axis=1)
    theta = np.arctan2(square[:, 1], square[:, 0])
    return ring.points(theta, rho)


def _unique_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges of a polygon mesh and, per face corner, the edge that starts there."""
    corners = faces.shape[1]
    directed = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)
    key = np.sort(directed, axis=1)
    edges, inverse = np.unique(key, axis=0, return_inverse=True)
    return edges, inverse.reshape(-1, corners)


def catmull_clark(mesh: QuadMesh) -> QuadMesh:
    """One step of Catmull–Clark subdivision of a closed quad mesh (tags inherited).

    New vertex order: the moved old vertices, then one per edge, then one per face.
    """
    v, f = mesh.vertices, mesh.faces
    num_v, num_f = len(v), len(f)
    edges, face_edges = _unique_edges(f)
    num_e = len(edges)
    face_points = v[f].mean(axis=1)
    edge_faces = np.zeros((num_e, 3))
    np.add.at(edge_faces, face_edges.ravel(), np.repeat(face_points, 4, axis=0))
    edge_points = (v[edges[:, 0]] + v[edges[:, 1]] + edge_faces) / 4.0

    valence = np.bincount(edges.ravel(), minlength=num_v).astype(np.float64)
    face_sum = np.zeros((num_v, 3))
    np.add.at(face_sum, f.ravel(), np.repeat(face_points, 4, axis=0))
    mid_sum = np.zeros((num_v, 3))
    mids = 0.5 * (v[edges[:, 0]] + v[edges[:, 1]])
    np.add.at(mid_sum, edges[:, 0], mids)
    np.add.at(mid_sum, edges[:, 1], mids)
    n = valence[:, None]
    moved = (face_sum / n + 2.0 * mid_sum / n + (n - 3.0) * v) / n

    e_id = num_v + face_edges  # edge starting at corner i: (f[i], f[i+1])
    c_id = num_v + num_e + np.arange(num_f)
    new_faces = []
    for i in range(4):
        prev = (i - 1) % 4
        new_faces.append(np.stack([f[:, i], e_id[:, i], c_id, e_id[:, prev]], axis=1))
    faces = np.stack(new_faces, axis=1).reshape(-1, 4)
    tags = np.repeat(mesh.tags, 4)
    return QuadMesh(np.concatenate([moved, edge_points, face_points]), faces, tags)


def triangulate(vertices: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Split each quad ``(a, b, c, d)`` along its shorter diagonal -> ``(2 Q, 3)`` triangles."""
    ac = np.linalg.norm(vertices[quads[:, 0]] - vertices[quads[:, 2]], axis=1)
    bd = np.linalg.norm(vertices[quads[:, 1]] - vertices[quads[:, 3]], axis=1)
    use_ac = (ac <= bd)[:, None]
    first = np.where(use_ac, quads[:, [0, 1, 2]], quads[:, [0, 1, 3]])
    second = np.where(use_ac, quads[:, [0, 2, 3]], quads[:, [1, 2, 3]])
    return np.stack([first, second], axis=1).reshape(-1, 3)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)`` of a triangle mesh."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    face_normal = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normal)
    return normals / (np.linalg.norm(normals, axis=1, keepdims=True) + _EPS)


def split_longest_edges(
    vertices: np.ndarray, faces: np.ndarray, num_vertices: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bisect the longest edges of a closed triangle mesh until it has ``num_vertices``.

    Each split adds one vertex and two triangles and keeps the mesh closed and oriented.
    The new vertex is the cubic Hermite midpoint of the edge, whose end tangents lie in the
    vertex normals' tangent planes, so refinement follows the curved surface instead of
    flattening it.

    *Returns*
        vertices ``(num_vertices, 3)``, faces ``(2 num_vertices - 4, 3)`` for a genus-0
        input, and for each added vertex the two ends of the edge it split ``(N, 2)``.
    """
    verts = [tuple(p) for p in vertices]
    normals = [tuple(n) for n in vertex_normals(vertices, faces)]
    parents: list[tuple[int, int]] = []
    tris = [list(t) for t in faces]
    # directed edge (a, b) -> index of the triangle holding it
    owner: dict[tuple[int, int], int] = {}
    for t, (a, b, c) in enumerate(tris):
        owner[(a, b)], owner[(b, c)], owner[(c, a)] = t, t, t

    def length(a: int, b: int) -> float:
        pa, pb = verts[a], verts[b]
        return ((pa[0] - pb[0]) ** 2 + (pa[1] - pb[1]) ** 2 + (pa[2] - pb[2]) ** 2) ** 0.5

    heap = [(-length(a, b), a, b) for (a, b) in owner if a < b]
    heapq.heapify(heap)
    while len(verts) < num_vertices:
        neg, a, b = heapq.heappop(heap)
        if (a, b) not in owner or abs(-neg - length(a, b)) > 1e-15:
            continue
        t1, t2 = owner.pop((a, b)), owner.pop((b, a))
        c = next(x for x in tris[t1] if x != a and x != b)
        d = next(x for x in tris[t2] if x != a and x != b)
        pa, pb = np.array(verts[a]), np.array(verts[b])
        na, nb = np.array(normals[a]), np.array(normals[b])
        chord = pb - pa
        point = 0.5 * (pa + pb) + (-(chord @ na) * na + (chord @ nb) * nb) / 8.0
        normal = na + nb
        normal /= np.linalg.norm(normal) + _EPS
        m = len(verts)
        verts.append(tuple(point))
        normals.append(tuple(normal))
        parents.append((a, b))
        # (a, b, c) -> (a, m, c) + (m, b, c);  (b, a, d) -> (b, m, d) + (m, a, d)
        tris[t1] = [a, m, c]
        tris[t2] = [b, m, d]
        t3, t4 = len(tris), len(tris) + 1
        tris.append([m, b, c])
        tris.append([m, a, d])
        owner[(a, m)], owner[(m, c)], owner[(c, a)] = t1, t1, t1
        owner[(m, b)], owner[(b, c)], owner[(c, m)] = t3, t3, t3
        owner[(b, m)], owner[(m, d)], owner[(d, b)] = t2, t2, t2
        owner[(m, a)], owner[(a, d)], owner[(d, m)] = t4, t4, t4
        for x, y in ((a, m), (m, b), (c, m), (d, m)):
            heapq.heappush(heap, (-length(x, y), min(x, y), max(x, y)))
    return (np.array(verts), np.array(tris, dtype=np.int64),
            np.array(parents, dtype=np.int64).reshape(-1, 2))


def vertex_adjacency(faces: np.ndarray, num_vertices: int) -> scipy.sparse.csr_matrix:
    """Symmetric 0/1 vertex adjacency ``(V, V)`` of a triangle mesh."""
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    adjacency = scipy.sparse.coo_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(num_vertices, num_vertices)
    ).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float64)
    return adjacency.tocsr()


def tangential_relaxation(
    vertices: np.ndarray, faces: np.ndarray, iterations: int, step: float = 0.5
) -> np.ndarray:
    """Move vertices towards their neighbours' centroid within the tangent plane.

    Evens out triangle sizes without shrinking the surface (the normal component of the
    Laplacian is dropped).
    """
    adjacency = vertex_adjacency(faces, len(vertices))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    points = vertices.copy()
    for _ in range(iterations):
        normals = vertex_normals(points, faces)
        delta = adjacency @ points / degree[:, None] - points
        delta -= np.einsum("ij,ij->i", delta, normals)[:, None] * normals
        points = points + step * delta
    return points


def topology_report(faces: np.ndarray, num_vertices: int) -> dict[str, int | bool]:
    """Manifold checks of a triangle mesh.

    *Returns*
        ``closed_manifold`` (every directed edge appears once and its reverse once),
        ``components`` (connected components over edges), ``euler`` (V - E + F),
        ``unused_vertices``.
    """
    directed = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)
    unique_directed = np.unique(directed, axis=0)
    reverse = unique_directed[:, ::-1]
    directed_set = {tuple(e) for e in unique_directed.tolist()}
    closed = len(unique_directed) == len(directed) and all(
        tuple(e) in directed_set for e in reverse.tolist()
    )
    edges = np.unique(np.sort(directed, axis=1), axis=0)
    graph = scipy.sparse.coo_matrix(
        (np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(num_vertices, num_vertices)
    )
    used = np.zeros(num_vertices, dtype=bool)
    used[faces.ravel()] = True
    count, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    components = len(np.unique(labels[used]))
    return {
        "closed_manifold": bool(closed),
        "components": int(components),
        "euler": int(num_vertices - len(edges) + len(faces)),
        "unused_vertices": int((~used).sum()),
    }
