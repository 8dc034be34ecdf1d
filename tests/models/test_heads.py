"""Tests for prohmr.models.heads.FCHead."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prohmr.models.heads import FCHead, FCHeadOutput

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

MEAN_BETAS = np.linspace(-0.5, 0.4, 10).astype(np.float32)
MEAN_CAM = np.array([0.9, 0.05, -0.1], dtype=np.float32)


def make_head(in_features: int = 32, hidden: int = 16, seed: int = 0) -> FCHead:
    torch.manual_seed(seed)
    return FCHead(MEAN_BETAS, MEAN_CAM, in_features=in_features, hidden_features=hidden)


def manual_offsets(head: FCHead, features: torch.Tensor) -> torch.Tensor:
    """Offsets computed element by element from the weights, float64."""
    w1 = head.layers[0].weight.double()
    b1 = head.layers[0].bias.double()
    w2 = head.layers[2].weight.double()
    b2 = head.layers[2].bias.double()
    x = features.double()
    hidden = torch.clamp((x[..., None, :] * w1).sum(-1) + b1, min=0)
    return (hidden[..., None, :] * w2).sum(-1) + b2


def test_state_dict_layout_matches_official_checkpoint() -> None:
    head = FCHead(MEAN_BETAS, MEAN_CAM)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {
        "init_cam": (1, 1, 3),
        "init_betas": (1, 1, 10),
        "layers.0.weight": (1024, 2048),
        "layers.0.bias": (1024,),
        "layers.2.weight": (13, 1024),
        "layers.2.bias": (13,),
    }
    official = {k: torch.randn(s) for k, s in shapes.items()}
    head.load_state_dict(official, strict=True)
    torch.testing.assert_close(head.init_cam, official["init_cam"], rtol=0, atol=0)


def test_buffers_hold_mean_params() -> None:
    head = make_head()
    np.testing.assert_array_equal(head.init_betas.reshape(-1).numpy(), MEAN_BETAS)
    np.testing.assert_array_equal(head.init_cam.reshape(-1).numpy(), MEAN_CAM)
    assert head.init_betas.dtype == torch.float32
    from_tensors = FCHead(torch.from_numpy(MEAN_BETAS)[None].double(),
                          torch.from_numpy(MEAN_CAM), in_features=32, hidden_features=16)
    torch.testing.assert_close(from_tensors.init_betas, head.init_betas, rtol=0, atol=0)
    from_dict = FCHead.from_mean_params(
        {"pose": np.zeros(144), "shape": MEAN_BETAS, "cam": MEAN_CAM}, in_features=32)
    torch.testing.assert_close(from_dict.init_cam, head.init_cam, rtol=0, atol=0)


def test_output_is_mean_plus_offsets_shared_by_samples() -> None:
    head = make_head()
    with torch.no_grad():  # make the offsets large enough to matter
        head.layers[2].weight.normal_()
        head.layers[2].bias.normal_()
    features = torch.randn(3, 32)
    out = head(features, num_samples=5)
    assert isinstance(out, FCHeadOutput)
    assert out.betas.shape == (3, 5, 10) and out.cam.shape == (3, 5, 3)
    offsets = manual_offsets(head, features)
    expected_betas = torch.from_numpy(MEAN_BETAS).double() + offsets[:, :10]
    expected_cam = torch.from_numpy(MEAN_CAM).double() + offsets[:, 10:]
    for n in range(5):
        torch.testing.assert_close(out.betas[:, n].double(), expected_betas,
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.cam[:, n].double(), expected_cam, rtol=1e-5, atol=1e-5)
        assert torch.equal(out.betas[:, n], out.betas[:, 0])
        assert torch.equal(out.cam[:, n], out.cam[:, 0])


def test_output_init_is_small() -> None:
    head = make_head(in_features=2048, hidden=1024)
    weight = head.layers[2].weight
    bound = 0.02 * math.sqrt(6.0 / (1024 + 13))
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.9 * bound  # xavier-uniform, not zero
    assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert torch.equal(head.layers[2].bias, torch.zeros(13))
    out = head(torch.rand(4, 2048), num_samples=1)
    torch.testing.assert_close(out.cam[:, 0], torch.from_numpy(MEAN_CAM).expand(4, 3),
                               rtol=0, atol=0.05)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_device_leading_dims(device: str, dtype: torch.dtype) -> None:
    head = make_head().to(device=device, dtype=dtype)
    features = torch.randn(2, 3, 32, device=device, dtype=dtype)
    out = head(features, num_samples=4)
    assert out.betas.shape == (2, 3, 4, 10) and out.cam.shape == (2, 3, 4, 3)
    assert out.betas.dtype == dtype and out.cam.device.type == device
    flat = head(features.reshape(6, 32), num_samples=4)
    torch.testing.assert_close(out.betas.reshape(6, 4, 10), flat.betas)
    torch.testing.assert_close(out.cam.reshape(6, 4, 3), flat.cam)


def test_gradients_reach_every_parameter() -> None:
    head = make_head()
    out = head(torch.randn(4, 32), num_samples=3)
    (out.betas.square().sum() + out.cam.square().sum()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_validation() -> None:
    head = make_head()
    with pytest.raises(ValueError, match=r"features must have shape \(B, 32\)"):
        head(torch.randn(4, 31))
    with pytest.raises(ValueError, match="features"):
        head(torch.randn(32))
    with pytest.raises(ValueError, match="num_samples"):
        head(torch.randn(4, 32), num_samples=0)
    with pytest.raises(ValueError, match="mean_betas"):
        FCHead(np.zeros(9), MEAN_CAM)
    with pytest.raises(ValueError, match="mean_cam"):
        FCHead(MEAN_BETAS, [0.9, 0.0])
    with pytest.raises(ValueError, match="cam"):
        FCHead.from_mean_params({"shape": MEAN_BETAS})
