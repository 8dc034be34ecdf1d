"""Tests for prohmr.models.backbones: architecture, names, counts, init, weight loading."""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prohmr.models.backbones import (
    BACKBONE_NAMES,
    ResNet,
    create_backbone,
    load_imagenet_weights,
)

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

# Independent reference: the layer spec of each depth, as in He et al. / torchvision.
SPECS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
# torchvision's published parameter totals minus the ImageNet classifier
# (fc: 512*1000+1000 = 513,000 for 18/34; 2048*1000+1000 = 2,049,000 for 50+).
TORCHVISION_COUNTS_WITHOUT_FC = {
    "resnet18": 11_689_512 - 513_000,
    "resnet34": 21_797_672 - 513_000,
    "resnet50": 25_557_032 - 2_049_000,
    "resnet101": 44_549_160 - 2_049_000,
    "resnet152": 60_192_808 - 2_049_000,
}
OUT_FEATURES = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048,
                "resnet152": 2048}


def expected_state_shapes(block: str, layers: tuple[int, ...], batch_norm: bool = True
                          ) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of a torchvision ResNet (minus fc) with its shape, from the spec."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        shapes[f"{name}.weight"] = (cout, cin, k, k)

    def norm(name: str, c: int) -> None:
        shapes[f"{name}.weight"] = (c,)
        shapes[f"{name}.bias"] = (c,)
        if batch_norm:
            shapes[f"{name}.running_mean"] = (c,)
            shapes[f"{name}.running_var"] = (c,)
            shapes[f"{name}.num_batches_tracked"] = ()

    conv("conv1", 3, 64, 7)
    norm("bn1", 64)
    cin = 64
    for stage, n in enumerate(layers):
        planes = 64 * 2**stage
        cout = planes * (4 if block == "bottleneck" else 1)
        for i in range(n):
            p = f"layer{stage + 1}.{i}"
            if block == "basic":
                conv(f"{p}.conv1", cin, planes, 3)
                norm(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3)
                norm(f"{p}.bn2", planes)
            else:
                conv(f"{p}.conv1", cin, planes, 1)
                norm(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3)
                norm(f"{p}.bn2", planes)
                conv(f"{p}.conv3", planes, cout, 1)
                norm(f"{p}.bn3", cout)
            if i == 0 and (stage > 0 or cin != cout):
                conv(f"{p}.downsample.0", cin, cout, 1)
                norm(f"{p}.downsample.1", cout)
            cin = cout
    return shapes


def parameter_count_from_spec(block: str, layers: tuple[int, ...]) -> int:
    shapes = expected_state_shapes(block, layers, batch_norm=False)
    return sum(math.prod(s) for s in shapes.values())


@functools.lru_cache(maxsize=None)
def cached_backbone(name: str) -> ResNet:
    torch.manual_seed(0)
    return create_backbone(name).eval()


def randomize_norm_statistics(model: nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))


def reference_forward(state: dict[str, torch.Tensor], block: str, layers: tuple[int, ...],
                      x: torch.Tensor, num_groups: int | None = None) -> torch.Tensor:
    """Functional ResNet (eval mode) from a state dict: the last feature map."""

    def norm(name: str, h: torch.Tensor) -> torch.Tensor:
        if num_groups is not None:
            return F.group_norm(h, num_groups, state[f"{name}.weight"], state[f"{name}.bias"])
        return F.batch_norm(h, state[f"{name}.running_mean"], state[f"{name}.running_var"],
                            state[f"{name}.weight"], state[f"{name}.bias"], training=False,
                            eps=1e-5)

    h = F.conv2d(x, state["conv1.weight"], stride=2, padding=3)
    h = F.max_pool2d(F.relu(norm("bn1", h)), 3, stride=2, padding=1)
    for stage, n in enumerate(layers):
        for i in range(n):
            p = f"layer{stage + 1}.{i}"
            stride = 2 if (i == 0 and stage > 0) else 1
            if f"{p}.downsample.0.weight" in state:
                skip = norm(f"{p}.downsample.1",
                            F.conv2d(h, state[f"{p}.downsample.0.weight"], stride=stride))
            else:
                skip = h
            if block == "basic":
                y = F.relu(norm(f"{p}.bn1", F.conv2d(h, state[f"{p}.conv1.weight"],
                                                      stride=stride, padding=1)))
                y = norm(f"{p}.bn2", F.conv2d(y, state[f"{p}.conv2.weight"], padding=1))
            else:
                y = F.relu(norm(f"{p}.bn1", F.conv2d(h, state[f"{p}.conv1.weight"])))
                y = F.relu(norm(f"{p}.bn2", F.conv2d(y, state[f"{p}.conv2.weight"],
                                                      stride=stride, padding=1)))
                y = norm(f"{p}.bn3", F.conv2d(y, state[f"{p}.conv3.weight"]))
            h = F.relu(y + skip)
    return h


# --- architecture -------------------------------------------------------------------------

@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_state_dict_names_shapes_and_parameter_count(name: str) -> None:
    model = cached_backbone(name)
    block, layers = SPECS[name]
    expected = expected_state_shapes(block, layers)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected
    count = sum(p.numel() for p in model.parameters())
    assert count == parameter_count_from_spec(block, layers) == TORCHVISION_COUNTS_WITHOUT_FC[name]
    assert model.out_features == OUT_FEATURES[name]


def test_resnet50_key_examples() -> None:
    keys = cached_backbone("resnet50").state_dict().keys()
    assert "layer4.2.bn3.running_var" in keys
    assert "layer1.0.downsample.0.weight" in keys
    assert "layer1.0.downsample.1.running_mean" in keys
    assert not any(k.startswith(("fc.", "avgpool")) for k in keys)
    assert sum(p.numel() for p in cached_backbone("resnet50").parameters()) == 23_508_032
    assert sum(p.numel() for p in cached_backbone("resnet18").parameters()) == 11_176_512


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_output_shapes(name: str) -> None:
    model = cached_backbone(name)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        fmap = model.forward_features(x)
        out = model(x)
    assert fmap.shape == (1, OUT_FEATURES[name], 2, 2)
    assert out.shape == (1, OUT_FEATURES[name])
    torch.testing.assert_close(out, fmap.mean(dim=(2, 3)), rtol=0, atol=0)


def test_resnet152_output_shape() -> None:
    model = cached_backbone("resnet152")
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 2048)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "size"), [("resnet18", (64, 48)), ("resnet50", (40, 32))])
def test_forward_matches_functional_reference(name: str, size: tuple[int, int]) -> None:
    torch.manual_seed(1)
    model = create_backbone(name).double().eval()
    randomize_norm_statistics(model, seed=2)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    block, layers = SPECS[name]
    with torch.no_grad():
        expected = reference_forward(model.state_dict(), block, layers, x)
        got = model.forward_features(x)
    expected_hw = tuple(math.ceil(s / 32) for s in size)
    assert got.shape == expected.shape == (2, OUT_FEATURES[name], *expected_hw)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_truncated_group_norm_resnet_matches_reference() -> None:
    """MAED's encoder stem: ResNet-50 with 3 stages of [3, 4, 9] blocks and GroupNorm."""
    torch.manual_seed(3)
    model = create_backbone("resnet50", layers=(3, 4, 9), num_stages=3, norm_layer="group",
                            num_groups=32).double()
    randomize_norm_statistics(model, seed=4)
    assert model.out_features == 1024 and model.num_stages == 3
    assert not any(k.startswith("layer4") for k in model.state_dict())
    got_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got_shapes == expected_state_shapes("bottleneck", (3, 4, 9), batch_norm=False)
    x = torch.randn(1, 3, 48, 32, dtype=torch.float64)
    with torch.no_grad():
        expected = reference_forward(model.state_dict(), "bottleneck", (3, 4, 9), x,
                                     num_groups=32)
        fmap = model.forward_features(x)
    assert fmap.shape == (1, 1024, 3, 2)  # stride 16
    torch.testing.assert_close(fmap, expected, rtol=1e-10, atol=1e-10)


def test_num_stages_truncates_standard_depth() -> None:
    model = create_backbone("resnet18", num_stages=3)
    assert model.out_features == 256
    assert model.blocks_per_stage == (2, 2, 2)
    assert not any(k.startswith("layer4") for k in model.state_dict())


def test_group_norm_variant_has_no_batch_norm() -> None:
    model = create_backbone("resnet50", norm_layer="group", num_groups=4)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    group_norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert len(group_norms) == 53 and all(m.num_groups == 4 for m in group_norms)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected_state_shapes(
        "bottleneck", (3, 4, 6, 3), batch_norm=False)
    # Batch size 1 in training mode works (BatchNorm could not normalise a 1x1 map).
    out = model.train()(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 2048) and torch.isfinite(out).all()


# --- dtype, device, batching, validation --------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_device_and_leading_dims(device: str, dtype: torch.dtype) -> None:
    torch.manual_seed(5)
    model = create_backbone("resnet18").to(device=device, dtype=dtype).eval()
    x = torch.randn(2, 3, 3, 32, 32, device=device, dtype=dtype)
    with torch.no_grad():
        out = model(x)
        flat = model(x.reshape(6, 3, 32, 32))
    assert out.shape == (2, 3, 512) and out.dtype == dtype and out.device.type == device
    torch.testing.assert_close(out.reshape(6, 512), flat)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(6)
    model = create_backbone("resnet18").train()
    model(torch.randn(2, 3, 32, 32)).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "shape", [(3, 32, 32), (1, 4, 32, 32), (1, 1, 32, 32)], ids=str
)
def test_rejects_bad_image_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\)"):
        cached_backbone("resnet18")(torch.zeros(shape))


def test_rejects_integer_images() -> None:
    with pytest.raises(ValueError, match="floating-point"):
        cached_backbone("resnet18")(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50, resnet101, resnet152"):
        create_backbone("resnet42")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_stages": 5},
        {"num_stages": 0},
        {"layers": (3, 4), "num_stages": 3},
        {"layers": (3, 0, 6, 3)},
        {"norm_layer": "instance"},
        {"norm_layer": "group", "num_groups": 3},
        {"block": "wide"},
    ],
    ids=str,
)
def test_rejects_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        create_backbone("resnet18", **kwargs)


# --- initialisation -----------------------------------------------------------------------

def test_initialisation_like_torchvision() -> None:
    model = cached_backbone("resnet50")
    w = model.layer4[0].conv2.weight  # (512, 512, 3, 3): 2.4 M samples
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert w.mean().abs() < 0.01 * math.sqrt(2 / fan_out)
    assert w.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.01)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


def test_zero_init_residual() -> None:
    default = create_backbone("resnet18")
    assert (default.layer1[0].bn2.weight == 1).all()
    model = create_backbone("resnet50", zero_init_residual=True, num_stages=2)
    for stage in (model.layer1, model.layer2):
        for block in stage:
            assert (block.bn3.weight == 0).all() and (block.bn1.weight == 1).all()
    assert (model.layer1[0].downsample[1].weight == 1).all()


# --- loading local weights ----------------------------------------------------------------

def _torchvision_file(model: ResNet, path: Path, drop: tuple[str, ...] = ()) -> Path:
    state = {k: v.clone() for k, v in model.state_dict().items() if k not in drop}
    state["fc.weight"] = torch.randn(1000, model.out_features)
    state["fc.bias"] = torch.randn(1000)
    torch.save(state, path)
    return path


def test_loading_torchvision_file_restores_outputs(tmp_path: Path, caplog) -> None:
    torch.manual_seed(7)
    source = create_backbone("resnet18")
    randomize_norm_statistics(source, seed=8)
    path = _torchvision_file(source, tmp_path / "resnet18.pth")
    torch.manual_seed(9)
    with caplog.at_level(logging.WARNING, logger="prohmr.models.backbones"):
        loaded = create_backbone("resnet18", pretrained_path=path).eval()
    assert caplog.records == []
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), source.eval()(x))
        assert not torch.equal(create_backbone("resnet18").eval()(x), loaded(x))


def test_loading_reports_missing_and_unexpected_keys(tmp_path: Path, caplog) -> None:
    source = create_backbone("resnet18")
    path = _torchvision_file(source, tmp_path / "partial.pth", drop=("layer3.1.conv2.weight",))
    target = create_backbone("resnet18", norm_layer="group", num_groups=4)
    with caplog.at_level(logging.WARNING, logger="prohmr.models.backbones"):
        missing, unexpected = load_imagenet_weights(target, path)
    assert missing == ["layer3.1.conv2.weight"]
    assert "layer1.0.bn1.running_mean" in unexpected
    assert all(k.endswith(("running_mean", "running_var", "num_batches_tracked"))
               for k in unexpected)
    assert not any(k.startswith("fc.") for k in unexpected)
    text = caplog.text
    assert "layer3.1.conv2.weight" in text and "layer1.0.bn1.running_mean" in text
    torch.testing.assert_close(target.layer4[1].conv2.weight, source.layer4[1].conv2.weight)


def test_loading_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "resnet50.pth"
    with pytest.raises(FileNotFoundError, match="resnet50.pth"):
        create_backbone("resnet50", pretrained_path=path)


def test_loading_wrong_depth_is_an_error(tmp_path: Path) -> None:
    path = _torchvision_file(cached_backbone("resnet18"), tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match="shape mismatch"):
        load_imagenet_weights(create_backbone("resnet50", num_stages=1), path)


def test_loading_unrelated_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    with pytest.raises(ValueError, match="no key"):
        load_imagenet_weights(cached_backbone("resnet18"), path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="flat state dict"):
        load_imagenet_weights(cached_backbone("resnet18"), path)
