"""Tests for prohmr.models.prohmr: the image model (backbone + SMPLFlow + body model)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from prohmr.body.joints import PELVIS_INDEX
from prohmr.body.model import BodyModel, create_body_model, load_mean_params
from prohmr.models.config import ProHMRConfig
from prohmr.models.prohmr import ProHMR, ProHMROutput

SMALL = ProHMRConfig(
    backbone="resnet18", flow_hidden_features=64, flow_num_layers=4,
    flow_num_blocks_per_layer=1, head_hidden_features=64,
)
MEAN_PARAMS = {"shape": torch.linspace(-0.3, 0.3, 10), "cam": torch.tensor([0.9, 0.02, -0.05])}


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return create_body_model()


def perturb(model: ProHMR, seed: int = 0) -> ProHMR:
    """Move every parameter and running statistic away from its initial value."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            if name.endswith("running_var"):
                tensor.mul_(1 + 0.1 * noise.abs())
            elif name.startswith("flow."):
                tensor.add_(0.02 * noise)
    return model


@pytest.fixture(scope="module")
def model(body: BodyModel) -> ProHMR:
    torch.manual_seed(0)
    return perturb(ProHMR(SMALL, body_model=body, mean_params=MEAN_PARAMS)).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_output_shapes_and_dict_access(model, images) -> None:
    with torch.no_grad():
        out = model(images, num_samples=3)
    assert isinstance(out, ProHMROutput)
    shapes = {name: tuple(value.shape) for name, value in out.items()}
    assert shapes == {
        "global_orient": (2, 3, 1, 3, 3), "body_pose": (2, 3, 23, 3, 3), "betas": (2, 3, 10),
        "cam": (2, 3, 3), "camera_translation": (2, 3, 3), "log_prob": (2, 3),
        "z": (2, 3, 144), "pose_6d": (2, 3, 144), "vertices": (2, 3, 6890, 3),
        "joints_3d": (2, 3, 44, 3), "joints_2d": (2, 3, 44, 2), "features": (2, 512),
    }
    assert out["vertices"] is out.vertices and "joints_2d" in out and len(out) == 12
    assert all(value.dtype == torch.float32 for value in out.values())
    with torch.no_grad():
        assert model(images).log_prob.shape == (2, 1)


def test_samples_share_betas_and_camera_but_not_poses(model, images) -> None:
    with torch.no_grad():
        out = model.sample(images, 4)
    for name in ("betas", "cam", "camera_translation"):
        value = out[name]
        assert torch.equal(value, value[:, :1].expand_as(value)), name
    assert not torch.equal(out.betas[0], out.betas[1])
    assert (out.body_pose[:, 0] - out.body_pose[:, 1]).abs().amax() > 1e-3
    assert (out.vertices[:, 0] - out.vertices[:, 1]).abs().amax() > 1e-4


def test_mode_is_the_sample_at_zero(model, images) -> None:
    with torch.no_grad():
        mode = model.mode(images)
        at_zero = model(images, z=torch.zeros(2, 1, 144))
        first = model(images, num_samples=3, mode_first=True)
    for name in mode.keys():
        torch.testing.assert_close(mode[name], at_zero[name], rtol=0, atol=0)
    assert mode.z.abs().max() == 0
    torch.testing.assert_close(first.vertices[:, :1], mode.vertices, rtol=0, atol=1e-5)
    assert (first.z[:, 1:] != 0).all()


def test_rotations_are_proper(model, images) -> None:
    with torch.no_grad():
        out = model(images, num_samples=5)
    rotations = torch.cat([out.global_orient, out.body_pose], dim=2).double()
    identity = torch.eye(3, dtype=torch.float64).expand_as(rotations)
    torch.testing.assert_close(rotations.transpose(-1, -2) @ rotations, identity,
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.linalg.det(rotations), torch.ones(rotations.shape[:-2],
                                                                       dtype=torch.float64),
                               rtol=0, atol=1e-5)


def test_log_prob_of_own_samples(model, images) -> None:
    with torch.no_grad():
        out = model(images, num_samples=4)
        log_prob, z = model.log_prob(images, out)
        single, _ = model.log_prob(images, {"pose_6d": out.pose_6d[:, 2]})
    torch.testing.assert_close(log_prob, out.log_prob, rtol=0, atol=1e-4)
    torch.testing.assert_close(z, out.z, rtol=0, atol=1e-4)
    torch.testing.assert_close(single, out.log_prob[:, 2], rtol=0, atol=1e-4)


def test_float64_model_is_consistent_to_round_off(model, images) -> None:
    double = copy.deepcopy(model).double()
    with torch.no_grad():
        out = double(images.double(), num_samples=3)
        log_prob, z = double.log_prob(images.double(), out)
    assert out.vertices.dtype == torch.float64
    torch.testing.assert_close(log_prob, out.log_prob, rtol=0, atol=1e-9)
    torch.testing.assert_close(z, out.z, rtol=0, atol=1e-9)


def test_body_outputs_camera_and_projection_by_hand(model, images, body) -> None:
    with torch.no_grad():
        out = model(images, num_samples=2)
        reference = body(out.global_orient, out.body_pose, out.betas)
    assert torch.equal(out.vertices, reference.vertices)
    assert torch.equal(out.joints_3d, reference.joints)
    # Pelvis = joint 39 = row 14 of the extra regressor applied to the vertices.
    assert PELVIS_INDEX == 39
    regressor = body.extra_regressor[14].double()
    pelvis = torch.einsum("v,bnvc->bnc", regressor, out.vertices.double())
    torch.testing.assert_close(out.joints_3d[:, :, 39].double(), pelvis, rtol=0, atol=1e-5)

    # Camera translation (SPEC §1.3) and the projection into normalised crop coordinates.
    cam = out.cam.double().numpy()
    s, tx, ty = cam[..., 0], cam[..., 1], cam[..., 2]
    translation = np.stack([tx, ty, 2 * 5000.0 / (224 * s + 1e-9)], axis=-1)
    np.testing.assert_allclose(out.camera_translation.numpy(), translation, rtol=1e-6, atol=0)
    points = out.joints_3d.double().numpy() + translation[:, :, None, :]
    expected_px = 5000.0 * points[..., :2] / points[..., 2:] + 112.0
    expected_2d = expected_px / 224.0 - 0.5
    np.testing.assert_allclose(out.joints_2d.numpy(), expected_2d, rtol=0, atol=1e-5)


def test_state_dict_holds_backbone_and_flow_only(model) -> None:
    keys = set(model.state_dict())
    expected = (
        {"initialized"}
        | {f"backbone.{k}" for k in model.backbone.state_dict()}
        | {f"flow.{k}" for k in model.flow.state_dict()}
    )
    assert keys == expected
    assert not [k for k in keys if "smpl" in k or "body_model" in k or "shapedirs" in k]
    assert any(k.startswith("flow.flow._transform._transforms.11.") for k in keys)
    assert {"flow.fc_head.init_cam", "flow.fc_head.layers.0.weight"} <= keys
    # The body model still follows dtype/device moves.
    assert copy.deepcopy(model).double().body_model.faces.dtype == torch.int64
    assert copy.deepcopy(model).double().body_model.layer.shapedirs.dtype == torch.float64


def test_autocast_runs_only_the_backbone_in_reduced_precision(model, images) -> None:
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.features(images).dtype == torch.bfloat16
        out = model(images, num_samples=2)
    for name in ("global_orient", "betas", "cam", "log_prob", "vertices", "joints_2d", "features"):
        assert out[name].dtype == torch.float32, name
    with torch.no_grad():
        reference = model.predict_from_features(out.features, z=out.z)
    for name in out.keys():
        torch.testing.assert_close(out[name], reference[name], rtol=1e-5, atol=1e-5)


def test_runs_on_every_device(model, images, device) -> None:
    moved = copy.deepcopy(model).to(device)
    inputs = images.to(device)
    with torch.no_grad():
        out = moved(inputs, num_samples=3)
        log_prob, _ = moved.log_prob(inputs, out)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            mixed = moved(inputs, z=out.z)
    assert out.vertices.device.type == device.type
    torch.testing.assert_close(log_prob, out.log_prob, rtol=0, atol=1e-4)
    assert mixed.vertices.dtype == torch.float32
    with torch.no_grad():
        reference = model(images, z=out.z.cpu())
    torch.testing.assert_close(out.vertices.cpu(), reference.vertices, rtol=1e-4, atol=1e-4)


def test_initialize_flow_from_ground_truth(body) -> None:
    torch.manual_seed(3)
    fresh = ProHMR(SMALL, body_model=body, mean_params=MEAN_PARAMS)
    features = torch.randn(8, 512)
    poses = {"pose_6d": torch.randn(8, 144) * torch.linspace(0.1, 2.0, 144) + 0.3}
    with pytest.raises(ValueError, match="training mode"):
        fresh.eval().initialize_flow(poses, features)
    fresh.train()
    assert fresh.initialize_flow(poses, features) is True
    assert bool(fresh.initialized)
    actnorm = fresh.flow.flow._transform._transforms[0]
    assert bool(actnorm.initialized)
    # The first ActNorm now standardises the ground truth, feature by feature.
    normalised = poses["pose_6d"] * actnorm.log_scale.exp() + actnorm.shift
    torch.testing.assert_close(normalised.mean(0), torch.zeros(144), rtol=0, atol=1e-5)
    torch.testing.assert_close(normalised.std(0), torch.ones(144), rtol=0, atol=1e-5)
    before = actnorm.log_scale.clone()
    assert fresh.initialize_flow({"pose_6d": torch.randn(8, 144)}, features) is False
    assert torch.equal(actnorm.log_scale, before)


@pytest.mark.parametrize(
    "images, pattern",
    [
        (torch.zeros(3, 64, 64), r"\(B, 3, H, W\)"),
        (torch.zeros(1, 1, 64, 64), r"\(B, 3, H, W\), got \(1, 1, 64, 64\)"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.int64), "floating"),
        (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
    ],
)
def test_invalid_images(model, images, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        model(images)
    with pytest.raises(ValueError, match=pattern):
        model.log_prob(images, {"pose_6d": torch.zeros(1, 144)})


def test_mean_params_come_from_the_config_or_beside_the_body_model(tmp_path, body) -> None:
    beside = load_mean_params(body.model_file.parent)
    model = ProHMR(SMALL, body_model=body)
    assert torch.equal(model.flow.fc_head.init_betas.flatten(), beside["shape"])
    assert torch.equal(model.flow.fc_head.init_cam.flatten(), beside["cam"])
    path = tmp_path / "means.npz"
    np.savez(path, pose=np.zeros(144), shape=np.arange(10.0), cam=np.array([0.7, 0.1, 0.2]))
    model = ProHMR(SMALL.replace(mean_params_path=str(path)), body_model=body)
    assert model.flow.fc_head.init_betas.flatten().tolist() == list(range(10))
    torch.testing.assert_close(model.flow.fc_head.init_cam.flatten(),
                               torch.tensor([0.7, 0.1, 0.2]), rtol=0, atol=0)


def test_constructor_validation(body) -> None:
    with pytest.raises(ValueError, match="ProHMRConfig"):
        ProHMR({"backbone": "resnet18"}, body_model=body)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="BodyModel"):
        ProHMR(SMALL, body_model=torch.nn.Identity())  # type: ignore[arg-type]
