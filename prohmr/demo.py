"""The demo behind ``make demo`` / ``prohmr demo``.

Runs on the embedded procedural body only (offline, no licence-gated file): poses the body in
a handful of poses and shapes and writes front/side figures of the mesh and skeleton, with
one summary line per figure.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from prohmr.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from prohmr.body.model import BodyModel, create_body_model
from prohmr.geometry import axis_angle_to_matrix
from prohmr.visualization.body_views import plot_body_views

__all__ = ["DEMO_POSES", "DEMO_SHAPES", "DemoReport", "pose_from_degrees", "run_demo"]

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


@dataclass
class DemoReport:
    """What the demo wrote: the output folder, figure paths and one line per figure."""

    out_dir: Path
    figures: list[Path] = field(default_factory=list)
    summary_lines: list[str] = field(default_factory=list)


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
    rotations = rotations.float()
    return body(
        global_orient=rotations[None, :1], body_pose=rotations[None, 1:], betas=betas[None]
    )


def _bone_lengths(smpl_joints: np.ndarray) -> np.ndarray:
    return np.array(
        [np.linalg.norm(smpl_joints[i] - smpl_joints[p]) for i, p in enumerate(SMPL_PARENTS)
         if p >= 0]
    )


def run_demo(out_dir: Path | str = "demo_output", model_path: str | Path | None = None) -> DemoReport:
    """Pose the default body in :data:`DEMO_POSES` and :data:`DEMO_SHAPES` and save figures.

    Arguments:
        out_dir: folder for the PNG figures (created; existing files of the same names are
            replaced, nothing else is touched).
        model_path: a body model to use instead of the procedural default.

    Returns:
        A :class:`DemoReport`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = DemoReport(out_dir=out_dir)
    body = create_body_model(model_path)
    faces = body.faces.cpu().numpy()
    zero_betas = torch.zeros(body.num_betas)
    rest = _pose_body(body, pose_from_degrees({}), zero_betas)
    rest_bones = _bone_lengths(rest.smpl_joints[0].numpy())

    cases = [(f"pose_{name}", pose, zero_betas) for name, pose in DEMO_POSES.items()]
    cases += [
        (f"shape_{name}", {}, torch.tensor(betas[: body.num_betas], dtype=torch.float32))
        for name, betas in DEMO_SHAPES.items()
    ]
    for name, rotations, betas in cases:
        with torch.no_grad():
            output = _pose_body(body, pose_from_degrees(rotations), betas)
        vertices = output.vertices[0].numpy()
        smpl_joints = output.smpl_joints[0].numpy()
        path = out_dir / f"{name}.png"
        figure = plot_body_views(
            vertices, faces, smpl_joints, SMPL_PARENTS, title=name.replace("_", " "),
            save_path=path,
        )
        plt.close(figure)
        height = vertices[:, 1].max() - vertices[:, 1].min()
        bone_change = np.abs(_bone_lengths(smpl_joints) - rest_bones).max() * 1000
        line = (
            f"{path.name}: height {height:.2f} m, {len(vertices)} vertices, {len(faces)} faces, "
            f"finite={bool(np.isfinite(vertices).all())}"
        )
        if name.startswith("pose_"):
            line += f", max bone-length change {bone_change:.3f} mm"
        report.figures.append(path)
        report.summary_lines.append(line)
        logger.info(line)
    return report
