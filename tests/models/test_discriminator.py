"""Tests for prohmr.models.discriminator.Discriminator (HMR's pose/shape critic)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from prohmr.models.discriminator import Discriminator

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
        ],
    ),
]
DTYPES = [torch.float32, torch.float64]


def random_rotations(*shape: int, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Random rotation matrices (QR of Gaussian matrices, det fixed to +1)."""
    q, r = torch.linalg.qr(torch.randn(*shape, 3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[..., None, :]
    q[..., :, 0] *= torch.sign(torch.linalg.det(q))[..., None]
    return q.to(dtype)


def original_state_shapes() -> dict[str, tuple[int, ...]]:
    """The ``discriminator.*`` layout of the official ProHMR checkpoint."""
    shapes = {
        "D_conv1.weight": (32, 9, 1, 1), "D_conv1.bias": (32,),
        "D_conv2.weight": (32, 32, 1, 1), "D_conv2.bias": (32,),
        "betas_fc1.weight": (10, 10), "betas_fc1.bias": (10,),
        "betas_fc2.weight": (5, 10), "betas_fc2.bias": (5,),
        "betas_out.weight": (1, 5), "betas_out.bias": (1,),
        "D_alljoints_fc1.weight": (1024, 736), "D_alljoints_fc1.bias": (1024,),
        "D_alljoints_fc2.weight": (1024, 1024), "D_alljoints_fc2.bias": (1024,),
        "D_alljoints_out.weight": (1, 1024), "D_alljoints_out.bias": (1,),
    }
    for j in range(23):
        shapes[f"pose_out.{j}.weight"] = (1, 32)
        shapes[f"pose_out.{j}.bias"] = (1,)
    return shapes


def reference_scores(disc: Discriminator, body_pose: torch.Tensor,
                     betas: torch.Tensor) -> torch.Tensor:
    """Brute-force float64 loops over images and joints, written from HMR's description."""
    p = {k: v.double() for k, v in disc.state_dict().items()}
    w1, w2 = p["D_conv1.weight"][:, :, 0, 0], p["D_conv2.weight"][:, :, 0, 0]
    out = torch.zeros(body_pose.shape[0], 25, dtype=torch.float64)
    for b in range(body_pose.shape[0]):
        joint_features = torch.zeros(32, 23, dtype=torch.float64)
        for j in range(23):
            entries = torch.tensor([body_pose[b, j, r, c].item()
                                    for r in range(3) for c in range(3)], dtype=torch.float64)
            h = torch.relu(w1 @ entries + p["D_conv1.bias"])
            h = torch.relu(w2 @ h + p["D_conv2.bias"])
            joint_features[:, j] = h
            out[b, j] = p[f"pose_out.{j}.weight"][0] @ h + p[f"pose_out.{j}.bias"][0]
        s = torch.relu(p["betas_fc1.weight"] @ betas[b].double() + p["betas_fc1.bias"])
        s = torch.relu(p["betas_fc2.weight"] @ s + p["betas_fc2.bias"])
        out[b, 23] = (p["betas_out.weight"] @ s + p["betas_out.bias"])[0]
        flat = torch.cat([joint_features[c] for c in range(32)])  # channel-major, 32 x 23
        a = torch.relu(p["D_alljoints_fc1.weight"] @ flat + p["D_alljoints_fc1.bias"])
        a = torch.relu(p["D_alljoints_fc2.weight"] @ a + p["D_alljoints_fc2.bias"])
        out[b, 24] = (p["D_alljoints_out.weight"] @ a + p["D_alljoints_out.bias"])[0]
    return out


@pytest.fixture
def disc() -> Discriminator:
    torch.manual_seed(0)
    model = Discriminator()
    with torch.no_grad():  # non-zero biases so that the reference also checks them
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.1)
    return model


def test_state_dict_matches_original_layout() -> None:
    model = Discriminator()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == original_state_shapes()
    official = {k: torch.randn(s) for k, s in original_state_shapes().items()}
    model.load_state_dict(official, strict=True)


def test_matches_brute_force_reference(disc: Discriminator) -> None:
    g = torch.Generator().manual_seed(1)
    body_pose = random_rotations(3, 23, generator=g, dtype=torch.float64)
    betas = torch.randn(3, 10, generator=g, dtype=torch.float64)
    got = disc.double()(body_pose, betas)
    assert got.shape == (3, 25)
    torch.testing.assert_close(got, reference_scores(disc, body_pose, betas),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_device_leading_dims(disc: Discriminator, device: str,
                                   dtype: torch.dtype) -> None:
    disc = disc.to(device=device, dtype=dtype)
    body_pose = random_rotations(2, 3, 23, dtype=dtype).to(device)
    betas = torch.randn(2, 3, 10, dtype=dtype, device=device)
    out = disc(body_pose, betas)
    assert out.shape == (2, 3, 25) and out.dtype == dtype and out.device.type == device
    flat = disc(body_pose.reshape(6, 23, 3, 3), betas.reshape(6, 10))
    torch.testing.assert_close(out.reshape(6, 25), flat)


def test_gradient_reaches_every_parameter(disc: Discriminator) -> None:
    body_pose = random_rotations(8, 23, generator=torch.Generator().manual_seed(2))
    betas = torch.randn(8, 10)
    disc(body_pose, betas).square().sum().backward()
    for name, param in disc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("joint", [0, 11, 22])
def test_per_joint_scores_depend_only_on_their_joint(disc: Discriminator, joint: int) -> None:
    g = torch.Generator().manual_seed(3)
    body_pose = random_rotations(4, 23, generator=g)
    betas = torch.randn(4, 10, generator=g)
    perturbed = body_pose.clone()
    perturbed[:, joint] = random_rotations(4, generator=g)
    with torch.no_grad():
        before, after = disc(body_pose, betas), disc(perturbed, betas)
    changed = (before != after).any(dim=0)
    expected = torch.zeros(25, dtype=torch.bool)
    expected[joint] = True
    expected[24] = True
    assert torch.equal(changed, expected)


def test_betas_change_only_the_betas_score(disc: Discriminator) -> None:
    body_pose = random_rotations(4, 23, generator=torch.Generator().manual_seed(4))
    betas = torch.randn(4, 10)
    with torch.no_grad():
        changed = (disc(body_pose, betas) != disc(body_pose, betas + 0.5)).any(dim=0)
    assert changed.nonzero().flatten().tolist() == [23]


def test_xavier_weights_zero_biases() -> None:
    torch.manual_seed(5)
    model = Discriminator()
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert len(layers) == 2 + 23 + 3 + 3
    for layer in layers:
        fan_out, fan_in = layer.weight.shape[0], layer.weight[0].numel()
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= bound
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    big = model.D_alljoints_fc2.weight
    assert big.std().item() == pytest.approx(math.sqrt(2.0 / 2048), rel=0.01)


def test_validation(disc: Discriminator) -> None:
    with pytest.raises(ValueError, match=r"body_pose must have shape \(B, 23, 3, 3\)"):
        disc(torch.zeros(2, 24, 3, 3), torch.zeros(2, 10))
    with pytest.raises(ValueError, match="body_pose"):
        disc(torch.zeros(2, 23, 9), torch.zeros(2, 10))
    with pytest.raises(ValueError, match="betas"):
        disc(torch.zeros(2, 23, 3, 3), torch.zeros(3, 10))
    with pytest.raises(ValueError, match="betas"):
        disc(torch.zeros(2, 23, 3, 3), torch.zeros(2, 11))
