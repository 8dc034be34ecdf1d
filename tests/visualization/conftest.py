"""Fixtures for the visualisation tests: a posed body (mesh and joints) and a PNG checker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from prohmr.body.joints import SMPL_JOINT_NAMES
from prohmr.body.model import create_body_model
from prohmr.geometry import axis_angle_to_matrix

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: A walking pose: axis-angle in degrees per SMPL joint (others at rest).
WALKING = {
    "left_hip": (-30, 0, 0), "right_hip": (20, 0, 0), "right_knee": (35, 0, 0),
    "left_knee": (10, 0, 0), "left_shoulder": (0, 20, -70), "right_shoulder": (0, 20, 70),
    "left_elbow": (0, -25, 0), "right_elbow": (0, 25, 0),
}


@dataclass
class Body:
    """A walking body in the camera frame (y down, facing the camera), before translation."""

    vertices: torch.Tensor  # (V, 3)
    faces: torch.Tensor  # (F, 3)
    joints: torch.Tensor  # (44, 3)
    smpl_joints: torch.Tensor  # (24, 3)
    body_frame_joints: torch.Tensor  # (44, 3), y up, facing +z
    body_frame_smpl_joints: torch.Tensor  # (24, 3)


@pytest.fixture(scope="session")
def body() -> Body:
    model = create_body_model()
    axis_angle = torch.zeros(24, 3)
    for name, degrees in WALKING.items():
        axis_angle[SMPL_JOINT_NAMES.index(name)] = torch.tensor(degrees).float().deg2rad()
    rotations = axis_angle_to_matrix(axis_angle)
    with torch.no_grad():
        output = model(
            global_orient=rotations[None, :1], body_pose=rotations[None, 1:],
            betas=torch.zeros(1, model.num_betas),
        )
    # Half-turn about x: body frame (y up, facing +z) to camera frame (y down, facing -z).
    flip = torch.tensor([1.0, -1.0, -1.0])
    return Body(
        vertices=output.vertices[0] * flip,
        faces=model.faces.cpu(),
        joints=output.joints[0] * flip,
        smpl_joints=output.smpl_joints[0] * flip,
        body_frame_joints=output.joints[0],
        body_frame_smpl_joints=output.smpl_joints[0],
    )


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """Every test must leave pyplot's figure registry as it found it."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before, "a visualisation function registered a pyplot figure"


def _assert_png(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


@pytest.fixture
def assert_png():
    """Check that a path is a non-empty PNG file."""
    return _assert_png
