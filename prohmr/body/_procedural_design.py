"""The designed body: rest skeleton, cross-sections of the box model, sculpted details.

Units are metres; y up, the body faces +z and its left side is +x (SMPL's frame); the
pelvis joint is the origin. Everything is designed for the left side and mirrored.

Private to :mod:`prohmr.body.procedural`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from prohmr.body._procedural_mesh import QuadMesh, Ring, catmull_clark, triangulate
from prohmr.body.joints import SMPL_JOINT_NAMES

__all__ = [
    "REST_JOINTS",
    "REGIONS",
    "BodySurface",
    "build_surface",
    "mirror",
    "rest_joints",
    "bone_capsules",
    "landmark_targets",
]

_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)

#: Designed rest joints (left side; right joints mirror them), SMPL's order and names.
REST_JOINTS: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, 0.0, 0.0),
    "left_hip": (0.085, -0.085, 0.0),
    "spine1": (0.0, 0.10, -0.015),
    "left_knee": (0.095, -0.47, 0.01),
    "spine2": (0.0, 0.23, -0.01),
    "left_ankle": (0.095, -0.86, -0.025),
    "spine3": (0.0, 0.30, -0.005),
    "left_foot": (0.10, -0.915, 0.095),
    "neck": (0.0, 0.50, -0.015),
    "left_collar": (0.075, 0.42, -0.015),
    "head": (0.0, 0.585, 0.02),
    "left_shoulder": (0.18, 0.445, -0.02),
    "left_elbow": (0.435, 0.445, -0.025),
    "left_wrist": (0.685, 0.445, -0.025),
    "left_hand": (0.77, 0.445, -0.025),
}


#: Body regions; a vertex is skinned only to the bones its region allows.
REGIONS: tuple[str, ...] = ("torso", "head", "l_leg", "r_leg", "l_arm", "r_arm")

#: Designed points that are not joints (left side): heel, toe tip, ends of the chest,
#: neck and head capsules.
_HEEL = (0.095, -0.915, -0.03)
_TOE = (0.099, -0.918, 0.185)
_HEAD_TOP = (0.0, 0.72, 0.02)
_HEAD_BASE = (0.0, 0.63, 0.02)
_NECK_BASE = (0.0, 0.48, -0.015)
_NECK_TOP = (0.0, 0.60, 0.01)
_CHEST_TOP = (0.0, 0.44, -0.01)
#: Where the thumb leaves the palm (x) and how long it is.
_THUMB_ROOT_X = 0.705
_THUMB_LENGTH = 0.062


def mirror(point: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """Reflect a point or a direction through the sagittal plane (x -> -x)."""
    return np.asarray(point, dtype=np.float64) * np.array([-1.0, 1.0, 1.0])


def _ring(center: tuple[float, float, float], e1: tuple[float, float, float],
          e2: tuple[float, float, float], radii: tuple[float, float, float, float],
          side: float = 1.0, squareness: float = 2.0) -> Ring:
    """A ring designed for the left side, mirrored when ``side`` is -1.

    Mirroring flips x of the centre and of both axes; the radii along a mirrored axis keep
    their meaning (e.g. "lateral" stays lateral).
    """
    flip = np.array([side, 1.0, 1.0])
    return Ring(tuple(np.asarray(center) * flip), tuple(np.asarray(e1) * flip),
                tuple(np.asarray(e2) * flip), radii, squareness)


@dataclass
class BodySurface:
    """The generated surface and where its parts ended up.

    ``vertices (V, 3)``, ``faces (F, 3)`` (a closed genus-0 triangle mesh), ``tags (F,)``
    the part each face was built for, and ``fingertips``: for each side ('l'/'r') and
    finger, the designed tip point and pointing direction.
    """

    vertices: np.ndarray
    faces: np.ndarray
    tags: np.ndarray
    fingertips: dict[str, tuple[np.ndarray, np.ndarray]]

    def vertex_regions(self) -> np.ndarray:
        """Index into :data:`REGIONS` of each vertex ``(V,)`` (from its faces' tags)."""
        face_region = np.array([_region_of_tag(str(t)) for t in self.tags])
        region = np.zeros(len(self.vertices), dtype=np.int64)
        for k in range(3):
            np.maximum.at(region, self.faces[:, k], face_region)
        return region


def _region_of_tag(tag: str) -> int:
    if tag.startswith("torso"):
        return REGIONS.index("torso")
    if tag.startswith("head"):
        return REGIONS.index("head")
    side = tag[:2]
    return REGIONS.index(f"{side}leg" if tag[2:].startswith(("leg", "foot")) else f"{side}arm")


def _torso() -> QuadMesh:
    # (y, z-centre, half-width x, half-depth front, half-depth back), bottom to top.
    sections = [
        (-0.13, 0.0, 0.152, 0.092, 0.110),
        (-0.03, -0.005, 0.175, 0.115, 0.140),
        (0.12, 0.0, 0.152, 0.118, 0.105),
        (0.27, 0.0, 0.165, 0.132, 0.115),
        (0.37, -0.01, 0.175, 0.120, 0.110),
        (0.485, -0.015, 0.160, 0.072, 0.072),
    ]
    rings = [Ring((0.0, y, zc), _X, _Z, (rx, rx, zf, zb), 2.5) for y, zc, rx, zf, zb in sections]
    return QuadMesh.closed_tube(rings, m=3, tag="torso")


def _pick(mesh: QuadMesh, prefix: str,
          predicate: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Faces tagged ``prefix*`` whose centres ``(N, 3)`` satisfy ``predicate``."""
    faces = mesh.select(prefix)
    return faces[predicate(mesh.face_centers(faces))]


def _legs(mesh: QuadMesh) -> None:
    for name, side in (("l", 1.0), ("r", -1.0)):
        patch = _pick(mesh, "torso_bottom", lambda c: side * c[:, 0] > 0.06)
        if len(patch) != 3:
            raise RuntimeError(f"leg patch: expected 3 faces, got {len(patch)}")
        # (y, x-centre, z-centre, lateral, medial, front, back)
        sections = [
            (-0.23, 0.092, 0.002, 0.094, 0.082, 0.092, 0.100),
            (-0.43, 0.095, 0.012, 0.066, 0.062, 0.068, 0.064),
            (-0.52, 0.095, 0.006, 0.060, 0.057, 0.060, 0.060),
            (-0.63, 0.095, -0.010, 0.060, 0.055, 0.050, 0.074),
            (-0.845, 0.095, -0.025, 0.037, 0.036, 0.038, 0.042),
            (-0.935, 0.095, -0.030, 0.042, 0.040, 0.048, 0.056),
        ]
        rings = [_ring((x, y, z), _X, _Z, (lat, med, fr, bk), side, 2.2)
                 for y, x, z, lat, med, fr, bk in sections]
        frame = (mirror(_X) if side < 0 else np.array(_X), np.array(_Z))
        mesh.extrude(patch, frame, rings, f"{name}_leg", uniformity=0.5)
        _foot(mesh, name, side)


def _foot(mesh: QuadMesh, name: str, side: float) -> None:
    patch = []
    for band in (4, 5):
        faces = mesh.select(f"{name}_leg{band}")
        patch.append(faces[np.argmax(mesh.face_centers(faces)[:, 2])])
    # (z, x-centre, y-centre, lateral, medial, top, bottom)
    sections = [
        (0.045, 0.097, -0.893, 0.047, 0.044, 0.042, 0.044),
        (0.130, 0.100, -0.910, 0.051, 0.048, 0.024, 0.027),
        (0.185, 0.099, -0.918, 0.034, 0.036, 0.013, 0.017),
    ]
    rings = [_ring((x, y, z), _X, _Y, (lat, med, top, bot), side, 2.6)
             for z, x, y, lat, med, top, bot in sections]
    frame = (mirror(_X) if side < 0 else np.array(_X), np.array(_Y))
    mesh.extrude(np.array(patch), frame, rings, f"{name}_foot")


def _arms(mesh: QuadMesh) -> None:
    for name, side in (("l", 1.0), ("r", -1.0)):
        patch = _pick(mesh, "torso4", lambda c: side * c[:, 0] > 0.1)
        if len(patch) != 3:
            raise RuntimeError(f"arm patch: expected 3 faces, got {len(patch)}")
        # (x, y-centre, z-centre, front, back, up, down)
        sections = [
            (0.215, 0.445, -0.020, 0.066, 0.068, 0.062, 0.056),
            (0.430, 0.445, -0.025, 0.045, 0.045, 0.043, 0.043),
            (0.530, 0.445, -0.025, 0.048, 0.044, 0.040, 0.038),
            (0.675, 0.445, -0.025, 0.032, 0.030, 0.022, 0.022),
            (0.720, 0.445, -0.022, 0.046, 0.044, 0.020, 0.017),
            (0.780, 0.445, -0.022, 0.052, 0.050, 0.016, 0.014),
        ]
        rings = [_ring((x, y, z), _Z, _Y, (fr, bk, up, dn), side, 2.3)
                 for x, y, z, fr, bk, up, dn in sections]
        mesh.extrude(patch, (np.array(_Z), np.array(_Y)), rings, f"{name}_arm")


def _neck_and_head(mesh: QuadMesh) -> None:
    patch = _pick(mesh, "torso_top", lambda c: np.abs(c[:, 0]) < 0.03)
    if len(patch) != 3:
        raise RuntimeError(f"neck patch: expected 3 faces, got {len(patch)}")
    # (y, z-centre, half-width, front, back, forward tilt in degrees): tilted sections
    # shape the jaw line, which runs from the chin up and back to the ears.
    sections = [
        (0.545, -0.010, 0.062, 0.058, 0.060, 15.0),
        (0.612, 0.020, 0.074, 0.094, 0.075, 28.0),
        (0.660, 0.022, 0.085, 0.098, 0.094, 5.0),
        (0.705, 0.020, 0.087, 0.100, 0.102, 0.0),
        (0.752, 0.015, 0.078, 0.088, 0.096, 0.0),
        (0.786, 0.010, 0.046, 0.050, 0.058, 0.0),
    ]
    rings = []
    for y, zc, rx, zf, zb, tilt in sections:
        t = np.radians(tilt)
        rings.append(Ring((0.0, y, zc), _X, (0.0, -np.sin(t), np.cos(t)), (rx, rx, zf, zb), 2.4))
    mesh.extrude(patch, (np.array(_X), np.array(_Z)), rings, "head", uniformity=0.5)


def _fingers(mesh: QuadMesh, name: str, side: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    cap = mesh.select(f"{name}_arm_cap")
    if len(cap) != 12:
        raise RuntimeError(f"hand cap: expected 12 faces after subdivision, got {len(cap)}")
    centers = mesh.face_centers(cap)
    order = np.argsort(-centers[:, 2], kind="stable")
    columns = cap[order].reshape(6, 2)
    tips = {}
    # index .. pinky from the thumb side (+z) backwards: length, radius, spread angle and
    # the root's offset across the palm from the palm's centre line.
    fingers = [("index", 0.072, 0.0092, 0.10, 0.030), ("middle", 0.080, 0.0095, 0.03, 0.010),
               ("ring", 0.076, 0.0090, -0.04, -0.010), ("pinky", 0.060, 0.0080, -0.12, -0.029)]
    palm_z = REST_JOINTS["left_hand"][2]
    for column, (finger, length, radius, spread, offset) in zip(columns[1:5], fingers):
        root = mesh.face_centers(column).mean(axis=0)
        root[2] = palm_z + offset
        direction = np.array([side * np.cos(spread), 0.0, np.sin(spread)])
        e1 = np.array([-side * np.sin(spread), 0.0, np.cos(spread)])
        e2 = np.array(_Y)
        steps = [(0.010, 1.0), (0.5 * length, 0.95), (length - 0.012, 0.85), (length, 0.45)]
        rings = [Ring(tuple(root + t * direction), tuple(e1), tuple(e2),
                      (s * radius,) * 2 + (0.9 * s * radius,) * 2, 2.2) for t, s in steps]
        mesh.extrude(column, (np.array(_Z), np.array(_Y)), rings, f"{name}_{finger}")
        tips[f"{name}{finger}"] = (root + length * direction, direction)
    tips[f"{name}thumb"] = _thumb(mesh, name, side)
    return tips


def _thumb(mesh: QuadMesh, name: str, side: float) -> tuple[np.ndarray, np.ndarray]:
    faces = np.concatenate([mesh.select(f"{name}_arm4"), mesh.select(f"{name}_arm5")])
    front = faces[mesh.face_normals(faces)[:, 2] > 0.8]
    centers = mesh.face_centers(front)
    # The sub-band nearest the thumb's root, then the two faces astride the palm's mid-plane.
    band_x = centers[np.argmin(np.abs(centers[:, 0] - side * _THUMB_ROOT_X)), 0]
    column = front[np.abs(centers[:, 0] - band_x) < 0.005]
    height = np.abs(mesh.face_centers(column)[:, 1] - REST_JOINTS["left_wrist"][1])
    patch = column[np.argsort(height, kind="stable")[:2]]
    if len(patch) != 2 or len(np.intersect1d(*mesh.faces[patch])) != 2:
        raise RuntimeError("thumb patch: no pair of adjacent faces on the palm's front")
    root = mesh.face_centers(patch).mean(axis=0)
    direction = np.array([side * 0.55, -0.12, 0.83])
    direction /= np.linalg.norm(direction)
    e1 = np.array([side, 0.0, 0.0]) - side * direction[0] * direction
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(direction, e1) * side
    # (distance along the thumb, radius); the last, small ring rounds the tip.
    steps = [(0.012, 0.0115), (0.032, 0.0105), (0.052, 0.0092), (_THUMB_LENGTH, 0.0050)]
    rings = [Ring(tuple(root + t * direction), tuple(e1), tuple(e2), (r, r, r * 0.9, r * 0.9),
                  2.2) for t, r in steps]
    mesh.extrude(patch, (np.array([side, 0.0, 0.0]), np.array(_Y)), rings, f"{name}_thumb")
    return root + _THUMB_LENGTH * direction, direction


def _bump(points: np.ndarray, center: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Anisotropic Gaussian falloff ``(N,)`` around ``center`` with per-axis widths."""
    return np.exp(-0.5 * (((points - center) / sigma) ** 2).sum(axis=1))


def _sculpt(mesh: QuadMesh) -> None:
    """Face and ear relief on the subdivided head: nose, eye sockets, brows, chin, ears."""
    p = mesh.vertices
    head = np.zeros(len(p), dtype=bool)
    head[np.unique(mesh.faces[mesh.select("head")])] = True
    offsets = np.zeros_like(p)
    # (centre, widths, displacement) of Gaussian bumps; the face bumps push along z.
    face = [
        ((0.0, 0.650, 0.11), (0.011, 0.016, 0.03), 0.019),  # nose
        ((0.0, 0.630, 0.11), (0.008, 0.006, 0.03), 0.006),  # nose tip droops a little
        ((0.0, 0.585, 0.10), (0.020, 0.011, 0.03), 0.008),  # chin
    ]
    for side in (1.0, -1.0):
        face += [
            ((side * 0.034, 0.684, 0.10), (0.012, 0.008, 0.03), -0.006),  # eye socket
            ((side * 0.034, 0.704, 0.10), (0.016, 0.006, 0.03), 0.004),  # brow
        ]
        ear = _bump(p, np.array([side * 0.08, 0.66, -0.005]), np.array([0.015, 0.02, 0.012]))
        offsets[:, 0] += side * 0.013 * ear * head
    for center, sigma, amount in face:
        offsets[:, 2] += amount * _bump(p, np.array(center), np.array(sigma)) * head
    mesh.displace(offsets)


def build_surface() -> BodySurface:
    """Model, subdivide and triangulate the body (a closed genus-0 mesh, not yet refined)."""
    mesh = _torso()
    _legs(mesh)
    _arms(mesh)
    _neck_and_head(mesh)
    mesh = catmull_clark(mesh)
    tips = {}
    for name, side in (("l", 1.0), ("r", -1.0)):
        tips.update(_fingers(mesh, name, side))
    mesh = catmull_clark(mesh)
    _sculpt(mesh)
    faces = triangulate(mesh.vertices, mesh.faces)
    return BodySurface(mesh.vertices, faces, np.repeat(mesh.tags, 2), tips)


def rest_joints() -> np.ndarray:
    """The 24 designed rest joints ``(24, 3)`` in SMPL's order (right side mirrored)."""
    joints = []
    for name in SMPL_JOINT_NAMES:
        if name.startswith("right_"):
            joints.append(mirror(REST_JOINTS["left_" + name[len("right_"):]]))
        else:
            joints.append(np.asarray(REST_JOINTS[name], dtype=np.float64))
    return np.stack(joints)


def bone_capsules(
    fingertips: dict[str, tuple[np.ndarray, np.ndarray]]
) -> list[tuple[int, np.ndarray, np.ndarray, float, float]]:
    """Capsules ``(joint, start, end, start radius, end radius)`` that a joint's part fills.

    A joint's part is what its rotation moves first: the segment towards its child (the
    head, hands and feet end at designed points). Used for skinning.
    """
    j = {name: p for name, p in zip(SMPL_JOINT_NAMES, rest_joints())}
    idx = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
    capsules = [
        (idx["pelvis"], j["pelvis"], j["spine1"], 0.15, 0.15),
        (idx["spine1"], j["spine1"], j["spine2"], 0.15, 0.15),
        (idx["spine2"], j["spine2"], j["spine3"], 0.15, 0.155),
        # The chest, neck and head capsules stop short of each other's joints so that
        # the thin neck is not swallowed by the wide chest or head.
        (idx["spine3"], j["spine3"], np.array(_CHEST_TOP), 0.155, 0.12),
        (idx["neck"], np.array(_NECK_BASE), np.array(_NECK_TOP), 0.064, 0.064),
        (idx["head"], np.array(_HEAD_BASE), np.array(_HEAD_TOP), 0.085, 0.085),
    ]
    for side, name in ((1.0, "left"), (-1.0, "right")):
        heel, toe = (np.asarray(p) * np.array([side, 1.0, 1.0]) for p in (_HEEL, _TOE))
        capsules += [
            (idx["pelvis"], j["pelvis"], j[f"{name}_hip"], 0.13, 0.11),
            (idx[f"{name}_hip"], j[f"{name}_hip"], j[f"{name}_knee"], 0.09, 0.06),
            (idx[f"{name}_knee"], j[f"{name}_knee"], j[f"{name}_ankle"], 0.058, 0.037),
            (idx[f"{name}_ankle"], j[f"{name}_ankle"], j[f"{name}_foot"], 0.04, 0.035),
            (idx[f"{name}_ankle"], j[f"{name}_ankle"], heel, 0.04, 0.035),
            (idx[f"{name}_foot"], j[f"{name}_foot"], toe, 0.03, 0.02),
            (idx[f"{name}_collar"], j[f"{name}_collar"], j[f"{name}_shoulder"], 0.07, 0.065),
            (idx[f"{name}_shoulder"], j[f"{name}_shoulder"], j[f"{name}_elbow"], 0.06, 0.044),
            (idx[f"{name}_elbow"], j[f"{name}_elbow"], j[f"{name}_wrist"], 0.045, 0.03),
            (idx[f"{name}_wrist"], j[f"{name}_wrist"], j[f"{name}_hand"], 0.028, 0.022),
        ]
        for finger in ("index", "middle", "ring", "pinky"):
            tip, _ = fingertips[f"{name[0]}{finger}"]
            capsules.append((idx[f"{name}_hand"], j[f"{name}_hand"], tip, 0.01, 0.008))
        tip, direction = fingertips[f"{name[0]}thumb"]
        capsules.append((idx[f"{name}_hand"], tip - _THUMB_LENGTH * direction, tip, 0.011,
                         0.008))
    return [(b, np.asarray(s0, float), np.asarray(s1, float), r0, r1)
            for b, s0, s1, r0, r1 in capsules]


def landmark_targets(
    fingertips: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Points just outside the surface whose nearest vertex is each smplx landmark.

    The eyes are matched differently (nearest front-facing head vertex in x and y), their
    entries only give the eye centre's x and y.
    """
    targets = {
        "nose": np.array([0.0, 0.655, 0.25]),
        "leye": np.array([0.034, 0.686, 0.0]),
        "reye": np.array([-0.034, 0.686, 0.0]),
        "lear": np.array([0.14, 0.66, -0.005]),
        "rear": np.array([-0.14, 0.66, -0.005]),
    }
    for side, prefix in ((1.0, "L"), (-1.0, "R")):
        flip = np.array([side, 1.0, 1.0])
        toe = np.asarray(_TOE) * flip
        for name, direction in (("BigToe", (-0.4, -0.1, 1.0)), ("SmallToe", (0.9, -0.1, 0.5))):
            d = np.asarray(direction) * flip
            targets[prefix + name] = toe + 0.07 * d / np.linalg.norm(d)
        d = np.array([0.0, -0.4, -1.0])
        targets[prefix + "Heel"] = np.asarray(_HEEL) * flip + 0.1 * d / np.linalg.norm(d)
    for key, (tip, direction) in fingertips.items():
        targets[key] = tip + 0.02 * direction
    return targets
