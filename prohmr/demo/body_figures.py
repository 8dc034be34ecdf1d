"""The demo's last section: the embedded body model posed and shaped, drawn front and side.

Runs on the body model only (offline, no licence-gated file): poses the body in a handful of
poses (:data:`DEMO_POSES`) and shapes (:data:`DEMO_SHAPES`) and writes a front/side figure of
the mesh and skeleton for each, with one caption line per figure (height, mesh size, and for
poses the largest bone-length change, which linear blend skinning must keep at zero).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from prohmr.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from prohmr.body.model import BodyModel
from prohmr.geometry import axis_angle_to_matrix
from prohmr.visualization.body_views import plot_body_views

__all__ = ["DEMO_POSES", "DEMO_SHAPES", "body_model_figures", "pose_from_degrees"]

logger = logging.getLogger(__name__)

#: Demo poses as axis-angle rotations in degrees per SMPL joint (unlisted joints: identity).
#: SMPL's rest pose is a T-pose facing +z with the left arm along +x.
DEMO_POSES: dict[str, dict[str, tuple[float, float, float]]] = {
    "rest": {},
    "a_pose": {"left_shoulder": (0, 0, -65), "right_shoulder": (0, 0, 65)},
    "walking": {
        "left_hip": (-30, 0, 0), "right_hip": (20, 0, 0), "right_knee": (35, 0, 0),
        "left_knee": (10, 0, 0), "left_shoulder": (0, 20, -70),
        "right_shoulder": (0, 20, 70), "left_elbow": (0, -25, 0), "right_elbow": (0, 25, 0),
    },
    "sitting": {
        "left_hip": (-90, 0, 0), "right_hip": (-90, 0, 0), "left_knee": (90, 0, 0),
        "right_knee": (90, 0, 0), "left_shoulder": (0, 0, -60), "right_shoulder": (0, 0, 60),
        "left_elbow": (0, -70, 0), "right_elbow": (0, 70, 0),
    },
    "waving": {
        "left_shoulder": (-90, 0, 20), "left_elbow": (0, -80, 0), "right_shoulder": (0, 0, 70),
        "spine2": (0, 0, 8), "head": (0, 0, 10), "right_hip": (0, 0, 10),
    },
}
#: Shapes shown with the rest pose: name -> betas.
DEMO_SHAPES: dict[str, list[float]] = {
    "short": [-3.0] + [0.0] * 9,
    "tall": [3.0] + [0.0] * 9,
    "heavy": [0.0, 3.0] + [0.0] * 8,
}


def pose_from_degrees(rotations: dict[str, tuple[float, float, float]]) -> torch.Tensor:
    """SMPL rotation matrices ``(24, 3, 3)`` from per-joint axis-angle vectors in degrees.

    Example:
        >>> pose_from_degrees({"left_knee": (90, 0, 0)}).shape
        torch.Size([24, 3, 3])
    """
    unknown = set(rotations) - set(SMPL_JOINT_NAMES)
    if unknown:
        raise ValueError(f"unknown SMPL joint names: {sorted(unknown)}")
    axis_angle = torch.zeros(len(SMPL_JOINT_NAMES), 3, dtype=torch.float64)
    for name, degrees in rotations.items():
        axis_angle[SMPL_JOINT_NAMES.index(name)] = torch.tensor(degrees) * math.pi / 180
    return axis_angle_to_matrix(axis_angle)


def _pose_body(body: BodyModel, rotations: torch.Tensor, betas: torch.Tensor):
    rotations = rotations.to(betas.dtype)
    return body(
        global_orient=rotations[None, :1], body_pose=rotations[None, 1:], betas=betas[None]
    )


def _bone_lengths(smpl_joints: np.ndarray) -> np.ndarray:
    return np.array(
        [np.linalg.norm(smpl_joints[i] - smpl_joints[p]) for i, p in enumerate(SMPL_PARENTS)
         if p >= 0]
    )


def body_model_figures(out_dir: Path, body: BodyModel) -> list[tuple[Path, str]]:
    """Pose ``body`` in :data:`DEMO_POSES` and :data:`DEMO_SHAPES` and save one figure each.

    Arguments:
        out_dir: folder for the PNG files ``body_pose_<name>.png`` and ``body_shape_<name>.png``
            (created; files of the same names are replaced).
        body: the body model (its first parameter's dtype and device are used).

    Returns:
        ``(path, caption)`` per figure.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    faces = body.faces.cpu().numpy()
    reference = body.layer.shapedirs
    zero_betas = torch.zeros(body.num_betas, dtype=reference.dtype, device=reference.device)
    with torch.no_grad():
        rest = _pose_body(body, pose_from_degrees({}).to(reference.device), zero_betas)
    rest_bones = _bone_lengths(rest.smpl_joints[0].cpu().double().numpy())

    cases = [(f"body_pose_{name}", pose, zero_betas) for name, pose in DEMO_POSES.items()]
    cases += [
        (f"body_shape_{name}", {}, zero_betas.new_tensor(betas[: body.num_betas]))
        for name, betas in DEMO_SHAPES.items()
    ]
    results = []
    for name, rotations, betas in cases:
        with torch.no_grad():
            output = _pose_body(body, pose_from_degrees(rotations).to(reference.device), betas)
        vertices = output.vertices[0].cpu().double().numpy()
        smpl_joints = output.smpl_joints[0].cpu().double().numpy()
        path = out_dir / f"{name}.png"
        title = name.removeprefix("body_").replace("_", " ")
        plot_body_views(vertices, faces, smpl_joints, SMPL_PARENTS, title=title, save=path)
        height = vertices[:, 1].max() - vertices[:, 1].min()
        caption = f"{title}: height {height:.2f} m, {len(vertices)} vertices, {len(faces)} faces"
        if name.startswith("body_pose_"):
            bone_change = np.abs(_bone_lengths(smpl_joints) - rest_bones).max() * 1000
            caption += f", largest bone-length change {bone_change:.3f} mm"
        results.append((path, caption))
        logger.info("demo: %s", caption)
    return results
