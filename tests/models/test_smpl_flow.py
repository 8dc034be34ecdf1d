"""Tests for prohmr.models.smpl_flow: the flow + FCHead over SMPL parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from prohmr.flows import ConditionalGlow
from prohmr.models.heads import FCHead
from prohmr.models.smpl_flow import SMPLFlow, SMPLFlowOutput

CONTEXT = 12
MEAN_PARAMS = {
    "shape": torch.linspace(-0.5, 0.5, 10),
    "cam": torch.tensor([0.9, 0.05, -0.1]),
}


def make_head(seed: int = 0, dtype: torch.dtype = torch.float32, device: str = "cpu") -> SMPLFlow:
    """A small SMPLFlow with non-trivial weights (the flow's defaults start near identity)."""
    torch.manual_seed(seed)
    head = SMPLFlow.create(
        CONTEXT, MEAN_PARAMS, hidden_features=32, num_layers=2, num_blocks_per_layer=1,
        head_hidden_features=16,
    )
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return head.eval().to(device=device, dtype=dtype)


def gram_schmidt_reference(pose_6d: np.ndarray) -> np.ndarray:
    """ProHMR's 6D decoding written out in float64 numpy: columns (R00,R10,R20),(R01,R11,R21)."""
    vectors = pose_6d.reshape(*pose_6d.shape[:-1], 24, 2, 3)
    a1, a2 = vectors[..., 0, :], vectors[..., 1, :]
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    b2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 = b2 / np.linalg.norm(b2, axis=-1, keepdims=True)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def random_rotations(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    count = int(np.prod(shape))
    matrices = Rotation.random(count, random_state=seed).as_matrix()
    return torch.tensor(matrices, dtype=torch.float64).reshape(*shape, 3, 3)


def test_state_dict_keys_are_the_original_names() -> None:
    keys = list(make_head().state_dict())
    assert all(k.startswith(("flow._transform._transforms.", "fc_head.")) for k in keys)
    assert "fc_head.init_cam" in keys and "fc_head.layers.2.weight" in keys
    assert "flow._transform._transforms.5.transform_net.final_layer.bias" in keys


@pytest.mark.parametrize("batch_size, num_samples", [(1, 1), (3, 4)])
def test_shapes_rotations_and_shared_head(device, dtype, batch_size, num_samples) -> None:
    head = make_head(device=device, dtype=dtype)
    features = torch.randn(batch_size, CONTEXT, device=device, dtype=dtype)
    out = head(features, num_samples)
    assert isinstance(out, SMPLFlowOutput)
    shapes = {name: tuple(value.shape) for name, value in out.items()}
    b, n = batch_size, num_samples
    assert shapes == {
        "global_orient": (b, n, 1, 3, 3), "body_pose": (b, n, 23, 3, 3), "betas": (b, n, 10),
        "cam": (b, n, 3), "log_prob": (b, n), "z": (b, n, 144), "pose_6d": (b, n, 144),
    }
    assert all(value.dtype == dtype and value.device.type == device.type for value in out.values())

    # Rotations: the ProHMR 6D layout decoded independently.
    expected = gram_schmidt_reference(out.pose_6d.detach().cpu().double().numpy())
    rotations = torch.cat([out.global_orient, out.body_pose], dim=2).detach().cpu().double()
    atol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(rotations.numpy(), expected, atol=atol, rtol=0)
    np.testing.assert_allclose(np.linalg.det(rotations.numpy()), 1.0, atol=atol, rtol=0)

    # Betas and camera: one per image, the head's mean plus its MLP offset (float64 by hand).
    x = features.double()
    layers = head.fc_head.layers
    hidden = torch.relu(x @ layers[0].weight.double().T + layers[0].bias.double())
    offsets = hidden @ layers[2].weight.double().T + layers[2].bias.double()
    expected_betas = MEAN_PARAMS["shape"].double().to(device) + offsets[:, :10]
    expected_cam = MEAN_PARAMS["cam"].double().to(device) + offsets[:, 10:]
    tolerance = {"rtol": 0, "atol": 1e-5 if dtype == torch.float32 else 1e-12}
    torch.testing.assert_close(
        out.betas.double(), expected_betas[:, None].expand(b, n, 10), **tolerance
    )
    torch.testing.assert_close(out.cam.double(), expected_cam[:, None].expand(b, n, 3), **tolerance)


def test_samples_are_the_flow_of_their_latents_one_by_one() -> None:
    """N samples in one call (context computed once) equal N separate one-sample calls."""
    head = make_head(dtype=torch.float64)
    features = torch.randn(3, CONTEXT, dtype=torch.float64)
    z = torch.randn(3, 5, 144, dtype=torch.float64)
    out = head(features, z=z)
    assert torch.equal(out.z, z)
    for n in range(5):
        single = head(features, z=z[:, n : n + 1])
        torch.testing.assert_close(single.pose_6d[:, 0], out.pose_6d[:, n], rtol=0, atol=1e-12)
        torch.testing.assert_close(single.log_prob[:, 0], out.log_prob[:, n], rtol=0, atol=1e-10)


def test_mode_and_mode_first() -> None:
    head = make_head(dtype=torch.float64)
    features = torch.randn(4, CONTEXT, dtype=torch.float64)
    mode = head(features, z=torch.zeros(4, 1, 144, dtype=torch.float64))
    reference = head.flow.mode(features)
    torch.testing.assert_close(mode.pose_6d, reference.samples, rtol=0, atol=1e-12)
    # The log-density at z = 0 is the same for every image (SPEC §3).
    torch.testing.assert_close(
        mode.log_prob, mode.log_prob[:1].expand(4, 1), rtol=0, atol=1e-10
    )

    generator = torch.Generator().manual_seed(7)
    first = head(features, 3, mode_first=True, generator=generator)
    assert torch.equal(first.z[:, 0], torch.zeros(4, 144, dtype=torch.float64))
    expected_random = torch.randn(4, 2, 144, generator=torch.Generator().manual_seed(7),
                                  dtype=torch.float64)
    assert torch.equal(first.z[:, 1:], expected_random)
    torch.testing.assert_close(first.pose_6d[:, :1], mode.pose_6d, rtol=0, atol=1e-12)
    assert head(features, 1, mode_first=True).z.abs().max() == 0


@pytest.mark.parametrize("with_sample_axis", [False, True])
def test_log_prob_inverts_sampling(device, dtype, with_sample_axis) -> None:
    head = make_head(device=device, dtype=dtype)
    features = torch.randn(3, CONTEXT, device=device, dtype=dtype)
    out = head(features, 4)
    if with_sample_axis:
        log_prob, z = head.log_prob({"pose_6d": out.pose_6d}, features)
        expected_log_prob, expected_z = out.log_prob, out.z
    else:
        log_prob, z = head.log_prob({"pose_6d": out.pose_6d[:, 0]}, features)
        expected_log_prob, expected_z = out.log_prob[:, 0], out.z[:, 0]
    atol = 1e-4 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(log_prob, expected_log_prob, rtol=0, atol=atol)
    torch.testing.assert_close(z, expected_z, rtol=0, atol=atol)
    # The output object itself is accepted (its raw pose_6d is used).
    torch.testing.assert_close(head.log_prob(out, features)[0], out.log_prob, rtol=0, atol=atol)


def test_log_prob_of_rotation_matrices_uses_their_first_two_columns() -> None:
    head = make_head(dtype=torch.float64)
    features = torch.randn(2, CONTEXT, dtype=torch.float64)
    rotations = random_rotations((2, 3, 24), seed=1)
    params = {"global_orient": rotations[:, :, :1], "body_pose": rotations[:, :, 1:],
              "betas": torch.zeros(2, 3, 10, dtype=torch.float64)}
    log_prob, z = head.log_prob(params, features)
    # ProHMR layout, by hand: per joint (R00, R10, R20, R01, R11, R21).
    columns = torch.stack([rotations[..., :, 0], rotations[..., :, 1]], dim=-2)
    pose_6d = columns.reshape(2, 3, 144)
    expected_log_prob, expected_z = head.flow.log_prob(pose_6d, features)
    torch.testing.assert_close(log_prob, expected_log_prob, rtol=0, atol=1e-10)
    torch.testing.assert_close(z, expected_z, rtol=0, atol=1e-10)
    # Orthonormal 6D decodes to the same rotations, so sampling from those latents gives them.
    resampled = head(features, z=z)
    torch.testing.assert_close(
        torch.cat([resampled.global_orient, resampled.body_pose], dim=2), rotations,
        rtol=0, atol=1e-9,
    )
    torch.testing.assert_close(resampled.log_prob, log_prob, rtol=0, atol=1e-9)
    # Without a sample axis.
    single, _ = head.log_prob(
        {"global_orient": rotations[:, 0, :1], "body_pose": rotations[:, 0, 1:]}, features
    )
    torch.testing.assert_close(single, log_prob[:, 0], rtol=0, atol=1e-10)


def test_gradients_reach_features_latents_and_weights() -> None:
    head = make_head()
    features = torch.randn(2, CONTEXT, requires_grad=True)
    z = torch.randn(2, 3, 144, requires_grad=True)
    out = head(features, z=z)
    (out.body_pose.sum() + out.betas.sum() + out.cam.sum() + out.log_prob.sum()).backward()
    assert features.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    missing = [name for name, p in head.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_autocast_keeps_the_head_in_float32() -> None:
    head = make_head()
    features = torch.randn(3, CONTEXT)
    z = torch.randn(3, 4, 144)
    reference = head(features, z=z)
    reference_log_prob, _ = head.log_prob(reference, features)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # Autocast is really on: a plain linear layer would run in bfloat16 here.
        assert head.fc_head.layers[0](features).dtype == torch.bfloat16
        out = head(features, z=z)
        log_prob, _ = head.log_prob(out, features)
    for name, value in out.items():
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, reference[name], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(log_prob, reference_log_prob, rtol=1e-5, atol=1e-4)


def test_constructor_checks_parts() -> None:
    flow = ConditionalGlow(features=144, hidden_features=8, num_layers=1,
                           num_blocks_per_layer=1, context_features=CONTEXT)
    with pytest.raises(ValueError, match="FCHead reading the flow's context"):
        SMPLFlow(flow, FCHead(torch.zeros(10), torch.zeros(3), in_features=CONTEXT + 1))
    small = ConditionalGlow(features=6, hidden_features=8, num_layers=1,
                            num_blocks_per_layer=1, context_features=CONTEXT)
    with pytest.raises(ValueError, match="over 144 features"):
        SMPLFlow(small, FCHead(torch.zeros(10), torch.zeros(3), in_features=CONTEXT))


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda h, f: h(f[:, :5]), r"`features` must be a floating tensor of shape \(B, 12\)"),
        (lambda h, f: h(f[0]), r"`features` must be a floating tensor"),
        (lambda h, f: h(f, 0), "`num_samples` must be an int >= 1"),
        (lambda h, f: h(f, z=torch.zeros(2, 3, 10)), r"`z` must have shape \(2, N, 144\)"),
        (lambda h, f: h(f, 2, z=torch.zeros(2, 3, 144)), "disagrees with `z`"),
        (lambda h, f: h(f, z=torch.zeros(2, 1, 144), mode_first=True), "either `z` or"),
        (lambda h, f: h.log_prob({"betas": torch.zeros(2, 10)}, f), "needs `pose_6d`"),
        (lambda h, f: h.log_prob({"pose_6d": torch.zeros(2, 72)}, f), "`pose_6d` must have"),
        (lambda h, f: h.log_prob({"pose_6d": torch.zeros(3, 144)}, f), "for 3 images"),
        (lambda h, f: h.log_prob({"pose_6d": torch.full((2, 144), float("nan"))}, f), "NaN"),
        (lambda h, f: h.log_prob({"global_orient": torch.eye(3).expand(2, 1, 3, 3),
                                  "body_pose": torch.eye(3).expand(2, 22, 3, 3)}, f),
         r"`body_pose` must have shape \(2, 23, 3, 3\)"),
        (lambda h, f: h.log_prob(torch.zeros(2, 144), f), "must be a mapping"),
    ],
)
def test_invalid_inputs(call, pattern) -> None:
    head = make_head()
    with pytest.raises(ValueError, match=pattern):
        call(head, torch.randn(2, CONTEXT))
