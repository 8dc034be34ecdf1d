"""BodyJoints: the joints of the full body model, from a vertex subset."""

from __future__ import annotations

from typing import Callable

import pytest
import torch

from prohmr.body.model import BodyModel
from prohmr.fitting.body_joints import BodyJoints
from prohmr.geometry import axis_angle_to_matrix


def _inputs(count: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    axis_angle = 0.6 * torch.randn(count, 24, 3, generator=generator, dtype=torch.float64)
    rotations = axis_angle_to_matrix(axis_angle)
    betas = 1.5 * torch.randn(count, 10, generator=generator, dtype=torch.float64)
    return rotations.to(device, dtype), betas.to(device, dtype)


def test_equals_the_full_body_model(
    make_body_model: Callable[[torch.dtype], BodyModel], device: torch.device, dtype: torch.dtype
) -> None:
    body = make_body_model(dtype).to(device)
    rotations, betas = _inputs(5, dtype, device)
    joints, smpl_joints = BodyJoints(body)(rotations[:, :1], rotations[:, 1:], betas)
    full = body(rotations[:, :1], rotations[:, 1:], betas)
    tolerance = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(joints, full.joints, atol=tolerance, rtol=0)
    torch.testing.assert_close(smpl_joints, full.smpl_joints, atol=tolerance, rtol=0)
    assert joints.dtype == dtype and joints.device.type == device.type


def test_gradients_equal_the_full_body_model(
    make_body_model: Callable[[torch.dtype], BodyModel],
) -> None:
    body = make_body_model(torch.float64)
    rotations, betas = _inputs(3, torch.float64, torch.device("cpu"))
    weights = torch.randn(3, 44, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = []
    for function in (lambda r, b: BodyJoints(body)(r[:, :1], r[:, 1:], b)[0],
                     lambda r, b: body(r[:, :1], r[:, 1:], b).joints):
        r, b = rotations.clone().requires_grad_(True), betas.clone().requires_grad_(True)
        grads.append(torch.autograd.grad((function(r, b) * weights).sum(), (r, b)))
    for fast, reference in zip(*grads):
        torch.testing.assert_close(fast, reference, atol=1e-10, rtol=0)


def test_uses_a_small_vertex_subset(make_body_model: Callable[[torch.dtype], BodyModel]) -> None:
    body = make_body_model(torch.float32)
    joints = BodyJoints(body)
    regressor_support = (body.extra_regressor != 0).any(dim=0).sum()
    assert joints.v_template.shape[0] <= int(regressor_support) + 11
    assert joints.v_template.shape[0] < body.num_vertices // 5


def test_rejects_other_models() -> None:
    with pytest.raises(ValueError, match="body_model"):
        BodyJoints(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
