"""ProSkeleton: input normalisation and its stored statistics, sampling, log-density, files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from prohmr.data.lifting import LIFTING_OUTPUT_POSITIONS, LIFTING_PELVIS, box_normalize_keypoints
from prohmr.flows import ActNorm
from prohmr.models.proskeleton import (
    JOINT_FEATURES,
    PROSKELETON_FORMAT,
    ProSkeleton,
    ProSkeletonConfig,
    export_proskeleton,
    load_proskeleton,
    save_proskeleton,
)

TINY = ProSkeletonConfig(
    context_features=32,
    context_num_blocks=1,
    flow_hidden_features=24,
    flow_num_layers=2,
    flow_num_blocks_per_layer=1,
)
B = 3


def _keypoints(
    batch_size: int = B, seed: int = 0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (200.0 + 300.0 * torch.rand(batch_size, 17, 2, generator=generator)).to(dtype)


def _joints(batch_size: int = B, seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (0.4 * torch.randn(batch_size, 17, 3, generator=generator)).to(dtype)


def _trained_like(seed: int = 0) -> ProSkeleton:
    """A tiny model with non-trivial statistics, ActNorm and BatchNorm state, in eval mode."""
    torch.manual_seed(seed)
    model = ProSkeleton(TINY)
    mean = 0.1 * torch.randn(34)
    std = 0.1 + torch.rand(34)
    model.set_keypoint_stats(mean, std)
    model.train()
    model.initialize_flow(_keypoints(16, seed=5), _joints(16, seed=6))
    return model.eval()


@pytest.fixture(scope="module")
def model() -> ProSkeleton:
    return _trained_like()


def test_normalisation_round_trip_and_formula(model: ProSkeleton) -> None:
    keypoints = _keypoints()
    normalized = model.normalize_keypoints(keypoints)
    box, center, size = box_normalize_keypoints(keypoints.double())
    expected = (box.flatten(1) - model.keypoints_mean.double()) / model.keypoints_std.double()
    torch.testing.assert_close(normalized.double(), expected, rtol=1e-5, atol=1e-5)
    back = model.denormalize_keypoints(normalized).double() * size[:, None, None] + center[:, None]
    torch.testing.assert_close(back, keypoints.double(), rtol=0, atol=1e-3)


def test_input_is_independent_of_image_position_and_resolution(model: ProSkeleton) -> None:
    keypoints = _keypoints()
    moved = 3.0 * keypoints + torch.tensor([-500.0, 1200.0])
    first = model.sample(keypoints, 4, generator=torch.Generator().manual_seed(0))
    second = model.sample(moved, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(first.joints_3d, second.joints_3d, rtol=1e-4, atol=1e-5)


def test_statistics_are_buffers_in_the_state_dict(model: ProSkeleton) -> None:
    state = model.state_dict()
    assert torch.equal(state["keypoints_mean"], model.keypoints_mean)
    assert torch.equal(state["keypoints_std"], model.keypoints_std)
    fresh = ProSkeleton(TINY)
    assert torch.equal(fresh.keypoints_std, torch.ones(34))
    fresh.load_state_dict(state)
    torch.testing.assert_close(
        fresh.eval().normalize_keypoints(_keypoints()), model.normalize_keypoints(_keypoints())
    )


def test_save_and_load_keep_everything(model: ProSkeleton, tmp_path: Path) -> None:
    path = save_proskeleton(model, tmp_path / "sub" / "proskeleton.pt", {"licence": "CC BY-SA 3.0"})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == PROSKELETON_FORMAT and raw["format_version"] == 1
    assert raw["config"] == TINY.to_dict() and raw["metadata"] == {"licence": "CC BY-SA 3.0"}
    assert all(value.device.type == "cpu" for value in raw["state_dict"].values())
    loaded = load_proskeleton(path)
    assert not loaded.training and loaded.config == TINY
    assert loaded.metadata == {"licence": "CC BY-SA 3.0"}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    keypoints = _keypoints()
    first = model.sample(keypoints, 3, generator=torch.Generator().manual_seed(2))
    second = loaded.sample(keypoints, 3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(first.joints_3d, second.joints_3d, rtol=0, atol=0)


def test_mode_is_sample_zero(model: ProSkeleton) -> None:
    keypoints = _keypoints()
    out = model.sample(keypoints, 6, generator=torch.Generator().manual_seed(0))
    mode = model.mode(keypoints)
    assert out.joints_3d.shape == (B, 6, 17, 3) and mode.joints_3d.shape == (B, 1, 17, 3)
    assert bool((out.z[:, 0] == 0).all()) and bool((out.z[:, 1:] != 0).all())
    torch.testing.assert_close(out.joints_3d[:, 0], mode.joints_3d[:, 0], rtol=1e-5, atol=1e-6)
    # The pelvis is exactly zero in every sample, the samples differ from the mode.
    assert bool((out.joints_3d[:, :, LIFTING_PELVIS] == 0).all())
    assert float((out.joints_3d[:, 1:] - out.joints_3d[:, :1]).abs().max().detach()) > 1e-3
    # Every layer has a constant log-determinant: the mode's density is the same for every
    # input and the highest of all samples.
    torch.testing.assert_close(mode.log_prob[:, 0], mode.log_prob[:1, 0].expand(B))
    assert bool((out.log_prob[:, 1:] < out.log_prob[:, :1]).all())


@pytest.mark.parametrize("num_samples", [1, 5])
def test_log_prob_agrees_with_sampling(model: ProSkeleton, device: torch.device,
                                       dtype: torch.dtype, num_samples: int) -> None:
    model = _trained_like().to(device=device, dtype=dtype)
    keypoints = _keypoints(dtype=dtype).to(device)
    out = model.sample(keypoints, num_samples, generator=torch.Generator(device).manual_seed(1))
    log_prob, z = model.log_prob(keypoints, out.joints_3d)
    tolerance = 1e-3 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(log_prob, out.log_prob, rtol=0, atol=tolerance)
    torch.testing.assert_close(z, out.z, rtol=0, atol=tolerance)
    # Only the pelvis-relative skeleton counts.
    offset = torch.tensor([1.0, -2.0, 3.0], dtype=dtype, device=device)
    shifted, _ = model.log_prob(keypoints, out.joints_3d + offset)
    torch.testing.assert_close(shifted, log_prob, rtol=0, atol=tolerance)


def test_log_prob_is_the_change_of_variables_density(model: ProSkeleton) -> None:
    """log p(x) = log N(z(x); 0, I) + log |det dz/dx|, the Jacobian by float64 autograd."""
    model = _trained_like().double()
    keypoints = _keypoints(1, dtype=torch.float64)
    joints = _joints(1, dtype=torch.float64)
    log_prob, z = model.log_prob(keypoints, joints)
    context = model.context(keypoints)

    def to_latent(values: torch.Tensor) -> torch.Tensor:
        return model.flow.log_prob(values[None], context)[1][0]

    values = model.joints_to_flow(joints)[0]
    jacobian = torch.autograd.functional.jacobian(to_latent, values)
    expected = (
        -0.5 * (z[0] ** 2).sum()
        - 0.5 * JOINT_FEATURES * math.log(2 * math.pi)
        + torch.linalg.slogdet(jacobian).logabsdet
    )
    torch.testing.assert_close(log_prob[0], expected, rtol=0, atol=1e-9)


def test_fast_path_equals_one_sample_at_a_time(model: ProSkeleton) -> None:
    keypoints = _keypoints()
    z = torch.randn(B, 4, JOINT_FEATURES, generator=torch.Generator().manual_seed(3))
    together = model.sample(keypoints, z=z)
    for index in range(4):
        alone = model.sample(keypoints, z=z[:, index : index + 1])
        torch.testing.assert_close(
            alone.joints_3d[:, 0], together.joints_3d[:, index], rtol=1e-5, atol=1e-5
        )
        torch.testing.assert_close(
            alone.log_prob[:, 0], together.log_prob[:, index], rtol=0, atol=1e-3
        )


def test_generator_makes_samples_reproducible(model: ProSkeleton) -> None:
    keypoints = _keypoints()
    first = model.sample(keypoints, 4, generator=torch.Generator().manual_seed(9)).joints_3d
    second = model.sample(keypoints, 4, generator=torch.Generator().manual_seed(9)).joints_3d
    third = model.sample(keypoints, 4, generator=torch.Generator().manual_seed(10)).joints_3d
    assert torch.equal(first, second) and not torch.equal(first, third)


def test_flow_values_and_joints_convert_both_ways() -> None:
    joints = _joints()
    values = ProSkeleton.joints_to_flow(joints)
    assert values.shape == (B, JOINT_FEATURES)
    relative = joints - joints[:, LIFTING_PELVIS : LIFTING_PELVIS + 1]
    torch.testing.assert_close(ProSkeleton.flow_to_joints(values), relative)
    torch.testing.assert_close(values[:, :3], relative[:, LIFTING_OUTPUT_POSITIONS[0]])


def test_actnorm_is_initialised_from_the_ground_truth() -> None:
    torch.manual_seed(0)
    model = ProSkeleton(TINY).train()
    joints = _joints(32, seed=4)
    assert model.initialize_flow(_keypoints(32), joints)
    assert not model.initialize_flow(_keypoints(32), joints)
    first = model.flow._transform._transforms[0]
    assert isinstance(first, ActNorm) and bool(first.initialized)
    normalized = ProSkeleton.joints_to_flow(joints) * first.log_scale.exp() + first.shift
    torch.testing.assert_close(normalized.mean(0), torch.zeros(JOINT_FEATURES), rtol=0, atol=1e-5)
    torch.testing.assert_close(normalized.std(0), torch.ones(JOINT_FEATURES), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        ProSkeleton(TINY).eval().initialize_flow(_keypoints(), _joints())


def test_export_from_a_training_checkpoint(model: ProSkeleton, tmp_path: Path) -> None:
    checkpoint = tmp_path / "last.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
            "hyper_parameters": {"config": TINY.to_dict(), "lr": 1e-3},
            "global_step": 7,
        },
        checkpoint,
    )
    out = export_proskeleton(checkpoint, tmp_path / "exported.pt", {"step": 7})
    loaded = load_proskeleton(out)
    assert loaded.metadata == {"step": 7}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# ------------------------------------------------------------------------------------ errors
def test_bad_inputs_are_refused(model: ProSkeleton) -> None:
    with pytest.raises(ValueError, match=r"\(B, 17, 2\)"):
        model.sample(torch.zeros(2, 16, 2))
    with pytest.raises(ValueError, match="floating"):
        model.sample(torch.zeros(2, 17, 2, dtype=torch.int64))
    bad = _keypoints()
    bad[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.mode(bad)
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(_keypoints(), 0)
    with pytest.raises(ValueError, match=r"`z` must have shape \(3, N, 48\)"):
        model.sample(_keypoints(), z=torch.zeros(3, 2, 47))
    with pytest.raises(ValueError, match=r"`joints_3d` must be a floating tensor of shape \(3, 17"):
        model.log_prob(_keypoints(), torch.zeros(2, 17, 3))
    joints = _joints()
    joints[1, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="joints_3d` contains NaN"):
        model.log_prob(_keypoints(), joints)
    with pytest.raises(ValueError, match="no size"):
        model.mode(torch.ones(1, 17, 2))
    with pytest.raises(ValueError, match=r"`std` must be a tensor of shape \(34,\)"):
        model.set_keypoint_stats(torch.zeros(34), torch.ones(17))
    with pytest.raises(ValueError, match=">= 0.001"):
        model.set_keypoint_stats(torch.zeros(34), torch.zeros(34))
    with pytest.raises(ValueError, match="unknown field"):
        ProSkeletonConfig.from_dict({"hidden": 3})
    with pytest.raises(ValueError, match="flow_dropout_probability"):
        ProSkeletonConfig(flow_dropout_probability=1.0)


def test_bad_files_are_refused(model: ProSkeleton, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_proskeleton(tmp_path / "nothing.pt")
    other = tmp_path / "other.pt"
    torch.save({"format": "prohmr.ProHMR", "format_version": 1}, other)
    with pytest.raises(ValueError, match="expected 'prohmr.ProSkeleton'"):
        load_proskeleton(other)
    wrong = tmp_path / "wrong.pt"
    save_proskeleton(model, wrong)
    checkpoint = torch.load(wrong, weights_only=True)
    checkpoint["config"]["context_features"] = 40
    del checkpoint["state_dict"]["keypoints_std"]
    torch.save(checkpoint, wrong)
    with pytest.raises(ValueError, match=r"(?s)missing: keypoints_std.*shape mismatch: encoder"):
        load_proskeleton(wrong)
    with pytest.raises(ValueError, match="not a ProSkeletonModule checkpoint"):
        export_proskeleton(other, tmp_path / "x.pt")
