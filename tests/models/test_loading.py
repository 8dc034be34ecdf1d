"""Tests for prohmr.models.loading and prohmr.models.config: load_model, checkpoints, configs."""

from __future__ import annotations

import pickle
import re
import socket
from pathlib import Path
from typing import Any

import pytest
import torch

from prohmr.body.model import BodyModel, create_body_model
from prohmr.models.config import ProHMRConfig
from prohmr.models.discriminator import Discriminator
from prohmr.models.loading import (
    PRETRAINED_MODELS,
    UntrustedCheckpointError,
    convert_original_checkpoint,
    load_model,
    read_checkpoint,
    save_model,
)
from prohmr.models.prohmr import ProHMR, ProHMROutput

SMALL = ProHMRConfig(
    backbone="resnet18", flow_hidden_features=64, flow_num_layers=4,
    flow_num_blocks_per_layer=1, head_hidden_features=64,
)
MEAN_PARAMS = {"shape": torch.linspace(-0.3, 0.3, 10), "cam": torch.tensor([0.9, 0.02, -0.05])}
NUM_TRANSFORMS = 3 * SMALL.flow_num_layers


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return create_body_model()


@pytest.fixture(scope="module")
def source(body: BodyModel) -> ProHMR:
    """A small model whose every weight and statistic differs from a fresh one's."""
    torch.manual_seed(0)
    model = ProHMR(SMALL, body_model=body, mean_params=MEAN_PARAMS)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.add_(0.1 * noise.abs() if name.endswith("running_var") else 0.02 * noise)
        model.initialized.fill_(True)
    return model.eval()


@pytest.fixture(scope="module")
def inputs(source: ProHMR) -> tuple[torch.Tensor, torch.Tensor, ProHMROutput]:
    """Images, latents and the source model's outputs for them."""
    generator = torch.Generator().manual_seed(2)
    images = torch.randn(2, 3, 32, 32, generator=generator)
    z = torch.randn(2, 3, 144, generator=generator)
    with torch.no_grad():
        return images, z, source(images, z=z)


def assert_same_outputs(model: ProHMR, inputs) -> None:
    images, z, expected = inputs
    assert not model.training
    with torch.no_grad():
        out = model(images, z=z)
    for name in expected.keys():
        assert torch.equal(out[name], expected[name]), name


def original_state_dict(model: ProHMR, smpl: bool = True, dummy: bool = True) -> dict:
    """The model's weights under the original ProHMR names (SPEC §3.1), written by hand."""
    state: dict[str, torch.Tensor] = {"initialized": model.initialized.clone()}
    state.update({f"backbone.{k}": v.clone() for k, v in model.backbone.state_dict().items()})
    flow = model.flow.flow.state_dict()
    state.update({f"flow.flow.{k}": v.clone() for k, v in flow.items()})
    if dummy:
        # The original fork's persistent scalar: the composite transform and its 12 children.
        state["flow.flow._transform.dummy_buffer"] = torch.tensor(0.0)
        for index in range(NUM_TRANSFORMS):
            state[f"flow.flow._transform._transforms.{index}.dummy_buffer"] = torch.tensor(0.0)
    head = model.flow.fc_head.state_dict()
    state.update({f"flow.fc_head.{k}": v.clone() for k, v in head.items()})
    torch.manual_seed(5)
    state.update({f"discriminator.{k}": v for k, v in Discriminator().state_dict().items()})
    if smpl:
        state.update({
            "smpl.betas": torch.zeros(1, 10), "smpl.body_pose": torch.zeros(1, 69),
            "smpl.shapedirs": torch.randn(20, 3, 10), "smpl.faces_tensor": torch.zeros(5, 3),
            "smpl.J_regressor_extra": torch.rand(19, 20),
        })
    return state


def lightning_file(path: Path, state_dict: dict, **extra: Any) -> Path:
    checkpoint = {
        "epoch": 41, "global_step": 500000, "pytorch-lightning_version": "1.4.4",
        "state_dict": state_dict, "optimizer_states": [{"state": {}, "param_groups": []}],
        "lr_schedulers": [], "hyper_parameters": {"lr": 1e-4, "batch_size": 64},
    }
    checkpoint.update(extra)
    torch.save(checkpoint, path)
    return path


# --- original ProHMR checkpoints ----------------------------------------------------------


@pytest.mark.parametrize("smpl, dummy", [(True, True), (False, False)])
def test_original_checkpoint_loads_to_identical_outputs(
    tmp_path, source, body, inputs, smpl, dummy
) -> None:
    path = lightning_file(tmp_path / "prohmr.ckpt", original_state_dict(source, smpl, dummy))
    loaded = load_model(path, config=SMALL, body_model=body)
    assert isinstance(loaded, ProHMR) and loaded.config == SMALL
    assert bool(loaded.initialized)
    assert_same_outputs(loaded, inputs)


def test_converter_splits_and_reports(source) -> None:
    state = original_state_dict(source)
    converted = convert_original_checkpoint({"state_dict": state})
    assert set(converted.model_state_dict) == set(source.state_dict())
    dummies = [k for k in converted.dropped_keys if k.endswith("dummy_buffer")]
    assert len(dummies) == NUM_TRANSFORMS + 1
    assert {k for k in converted.dropped_keys if k.startswith("smpl.")} == {
        k for k in state if k.startswith("smpl.")}
    discriminator = Discriminator()
    discriminator.load_state_dict(converted.discriminator_state_dict, strict=True)
    assert torch.equal(discriminator.D_alljoints_out.weight,
                       state["discriminator.D_alljoints_out.weight"])
    # A bare state dict works as well as a Lightning checkpoint.
    assert set(convert_original_checkpoint(state).model_state_dict) == set(source.state_dict())


def test_missing_unexpected_and_mismatched_keys_are_named(tmp_path, source, body) -> None:
    state = original_state_dict(source)
    missing = dict(state)
    del missing["flow.fc_head.init_cam"]
    del missing["backbone.layer2.0.bn1.running_mean"]
    path = lightning_file(tmp_path / "missing.ckpt", missing)
    with pytest.raises(ValueError) as error:
        load_model(path, config=SMALL, body_model=body)
    assert "missing: flow.fc_head.init_cam" in str(error.value)
    assert "missing: backbone.layer2.0.bn1.running_mean" in str(error.value)

    for key in ("backbone.fc.weight", "flow.flow._transform._transforms.12.shift"):
        path = lightning_file(tmp_path / "unexpected.ckpt", {**state, key: torch.zeros(3)})
        with pytest.raises(ValueError, match=re.escape(f"unexpected: {key}")):
            load_model(path, config=SMALL, body_model=body)
    with pytest.raises(ValueError, match=re.escape("unexpected: renderer.weight")):
        convert_original_checkpoint({**state, "renderer.weight": torch.zeros(1)})

    broken = {k: v for k, v in state.items() if k != "discriminator.betas_out.bias"}
    with pytest.raises(ValueError, match=re.escape("missing: betas_out.bias")):
        convert_original_checkpoint(broken)

    # The wrong configuration: every mis-shaped key is named.
    path = lightning_file(tmp_path / "prohmr.ckpt", state)
    with pytest.raises(ValueError, match=r"shape mismatch: flow\.flow\..*initial_layer\.weight"):
        load_model(path, config=SMALL.replace(flow_hidden_features=32), body_model=body)


# --- safe loading -------------------------------------------------------------------------

_EXECUTED: list[str] = []


def _record(value: str) -> str:
    _EXECUTED.append(value)
    return value


class _RunsCodeWhenUnpickled:
    def __reduce__(self) -> tuple:
        return _record, ("ran",)


def test_unsafe_objects_need_trust(tmp_path, source, body, inputs) -> None:
    path = lightning_file(
        tmp_path / "unsafe.ckpt", original_state_dict(source),
        hyper_parameters={"callback": _RunsCodeWhenUnpickled()},
    )
    _EXECUTED.clear()
    with pytest.raises(UntrustedCheckpointError, match=r"_record.*trust_checkpoint=True"):
        load_model(path, config=SMALL, body_model=body)
    with pytest.raises(UntrustedCheckpointError):
        convert_original_checkpoint(path)
    assert _EXECUTED == []
    loaded = load_model(path, config=SMALL, body_model=body, trust_checkpoint=True)
    assert _EXECUTED == ["ran"]
    assert_same_outputs(loaded, inputs)


class _LegacyCallback:
    """Pickled under Lightning 1.4's ModelCheckpoint class name (not imported here)."""


class _LegacyPickler(pickle._Pickler):  # type: ignore[name-defined]
    def save_global(self, obj: Any, name: Any = None) -> None:
        if obj is _LegacyCallback:
            self.write(pickle.GLOBAL + b"pytorch_lightning.callbacks.model_checkpoint\n"
                       b"ModelCheckpoint\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


class _LegacyPickleModule:
    Pickler = _LegacyPickler


def test_lightning_1_4_callback_keys_load_safely(tmp_path, source, body, inputs) -> None:
    path = tmp_path / "legacy.ckpt"
    checkpoint = {
        "state_dict": original_state_dict(source), "pytorch-lightning_version": "1.4.4",
        "callbacks": {_LegacyCallback: {"best_model_path": "", "dirpath": "/x/checkpoints"}},
    }
    torch.save(checkpoint, path, pickle_module=_LegacyPickleModule)
    raw = path.read_bytes()
    assert b"pytorch_lightning.callbacks.model_checkpoint" in raw
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    read = read_checkpoint(path)
    assert list(read["callbacks"].values()) == [{"best_model_path": "",
                                                  "dirpath": "/x/checkpoints"}]
    assert_same_outputs(load_model(path, config=SMALL, body_model=body), inputs)


def test_unreadable_and_missing_files(tmp_path) -> None:
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="garbage.ckpt"):
        read_checkpoint(garbage)
    missing = tmp_path / "nowhere" / "model.ckpt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_model(missing)
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        convert_original_checkpoint(missing)


def test_names_and_the_registry() -> None:
    assert set(PRETRAINED_MODELS) == {"prohmr_synthetic", "pose_prior", "proskeleton"}
    for name, path in PRETRAINED_MODELS.items():
        assert path.name == f"{name}.pt" and path.parent.name == "pretrained"
    with pytest.raises(
        ValueError, match=r"neither a known model name \(available: pose_prior, prohmr_synthetic"
    ):
        load_model("prohmr-h36m")
    with pytest.raises(ValueError, match="no model name or checkpoint path"):
        load_model()


# --- this library's own files -------------------------------------------------------------


def test_save_model_round_trip(tmp_path, source, body, inputs) -> None:
    path = save_model(source, tmp_path / "sub" / "model.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["config"] == SMALL.to_dict()
    assert set(raw["state_dict"]) == set(source.state_dict())
    loaded = load_model(path, body_model=body)
    assert loaded.config == SMALL
    assert_same_outputs(loaded, inputs)
    # A config passed by the caller overrides the stored one.
    with pytest.raises(ValueError, match="shape mismatch"):
        load_model(path, config=SMALL.replace(head_hidden_features=32), body_model=body)


@pytest.mark.parametrize("stored", ["dict", "object", "absent"])
def test_lightning_checkpoint_of_this_library(tmp_path, source, body, inputs, stored) -> None:
    state = {f"model.{k}": v for k, v in source.state_dict().items()}
    state.update({f"discriminator.{k}": v for k, v in Discriminator().state_dict().items()})
    hyper_parameters = {"dict": {"config": SMALL.to_dict(), "lr": 1e-4},
                        "object": {"config": SMALL}, "absent": {}}[stored]
    path = lightning_file(tmp_path / "ours.ckpt", state, hyper_parameters=hyper_parameters)
    config = SMALL if stored == "absent" else None
    loaded = load_model(path, config=config, body_model=body, device="cpu")
    assert loaded.config == SMALL
    assert_same_outputs(loaded, inputs)


def test_default_configuration_has_the_official_layout(body) -> None:
    """The default model's keys and shapes are those of SPEC §3.1 (written out here)."""
    model = ProHMR(body_model=body, mean_params=MEAN_PARAMS)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["initialized"] == ()
    assert shapes["backbone.conv1.weight"] == (64, 3, 7, 7)
    assert shapes["backbone.layer4.2.conv3.weight"] == (2048, 512, 1, 1)
    assert not [k for k in shapes if k.startswith(("backbone.fc", "backbone.avgpool"))]
    assert shapes["flow.fc_head.init_cam"] == (1, 1, 3)
    assert shapes["flow.fc_head.init_betas"] == (1, 1, 10)
    assert shapes["flow.fc_head.layers.0.weight"] == (1024, 2048)
    assert shapes["flow.fc_head.layers.2.weight"] == (13, 1024)
    expected: dict[str, tuple[int, ...]] = {}
    for index in range(12):
        prefix = f"flow.flow._transform._transforms.{index}."
        if index % 3 == 0:
            expected.update({prefix + "log_scale": (144,), prefix + "shift": (144,),
                             prefix + "initialized": ()})
        elif index % 3 == 1:
            expected.update({prefix + "bias": (144,), prefix + "lower_entries": (10296,),
                             prefix + "upper_entries": (10296,),
                             prefix + "unconstrained_upper_diag": (144,)})
        else:
            net = prefix + "transform_net."
            expected.update({prefix + "identity_features": (72,),
                             prefix + "transform_features": (72,),
                             net + "initial_layer.weight": (1024, 72 + 2048),
                             net + "initial_layer.bias": (1024,),
                             net + "final_layer.weight": (72, 1024),
                             net + "final_layer.bias": (72,)})
            for block in range(2):
                for layer in range(2):
                    bn = f"{net}blocks.{block}.batch_norm_layers.{layer}."
                    expected.update({bn + s: (1024,) for s in
                                     ("weight", "bias", "running_mean", "running_var")})
                    expected[bn + "num_batches_tracked"] = ()
                    linear = f"{net}blocks.{block}.linear_layers.{layer}."
                    expected.update({linear + "weight": (1024, 1024), linear + "bias": (1024,)})
    flow_shapes = {k: v for k, v in shapes.items() if k.startswith("flow.flow.")}
    assert flow_shapes == expected
    flow_parameters = sum(p.numel() for p in model.flow.flow.parameters())
    assert 25.85e6 < flow_parameters < 25.95e6  # SPEC §3: 25.9 M


def test_nothing_touches_the_network(tmp_path, monkeypatch, body) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    model = ProHMR(SMALL, body_model=body)
    path = save_model(model, tmp_path / "offline.pt")
    assert isinstance(load_model(path, body_model=body), ProHMR)


# --- configuration ------------------------------------------------------------------------


def test_config_round_trips(tmp_path) -> None:
    assert ProHMRConfig() == ProHMRConfig.from_dict({})
    config = SMALL.replace(body_model_path="/data/smpl", focal_length=4000)
    assert config.focal_length == 4000.0 and isinstance(config.focal_length, float)
    assert ProHMRConfig.from_dict(config.to_dict()) == config
    assert ProHMRConfig.from_yaml(config.to_yaml()) == config
    assert ProHMRConfig.load_yaml(config.save_yaml(tmp_path / "model.yaml")) == config
    assert ProHMRConfig.from_yaml("backbone: resnet34\n") == ProHMRConfig(backbone="resnet34")
    assert ProHMRConfig(body_model_path=Path("/x")).body_model_path == "/x"
    defaults = ProHMRConfig().to_dict()
    assert defaults["backbone"] == "resnet50" and defaults["flow_hidden_features"] == 1024
    assert (defaults["flow_num_layers"], defaults["flow_num_blocks_per_layer"]) == (4, 2)
    assert (defaults["focal_length"], defaults["image_size"]) == (5000.0, 224)


@pytest.mark.parametrize(
    "values, pattern",
    [
        ({"backbone": "vgg16"}, "unknown `backbone`"),
        ({"flow_hidden_feature": 64}, r"unknown field\(s\) \['flow_hidden_feature'\]"),
        ({"flow_num_layers": 0}, "`flow_num_layers` must be an integer >= 1"),
        ({"flow_dropout_probability": 1.0}, r"`flow_dropout_probability` must be in \[0, 1\)"),
        ({"focal_length": -1.0}, "`focal_length` must be a positive number"),
        ({"flow_batch_norm": "yes"}, "`flow_batch_norm` must be a bool"),
        ({"body_model_path": 3}, "`body_model_path` must be a string path or None"),
    ],
)
def test_config_validation(values, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        ProHMRConfig.from_dict(values)


def test_config_file_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.yaml"):
        ProHMRConfig.load_yaml(tmp_path / "absent.yaml")
    with pytest.raises(ValueError, match="must be a mapping"):
        ProHMRConfig.from_yaml("- resnet50\n")
