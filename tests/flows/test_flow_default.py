"""The 144-d default (ProHMR's configuration): structure, keys and a few numeric checks."""

from __future__ import annotations

import pytest
import torch

from prohmr.constants import NUM_SMPL_JOINTS, POSE_6D_DIM
from prohmr.flows import ConditionalGlow
from prohmr.geometry.rotations import rot6d_to_matrix

ACTNORM_KEYS = {"log_scale", "shift", "initialized"}
LU_KEYS = {"bias", "lower_entries", "upper_entries", "unconstrained_upper_diag"}


@pytest.fixture(scope="module")
def default_flow() -> ConditionalGlow:
    torch.manual_seed(0)
    return ConditionalGlow().eval()


def test_default_configuration_and_keys(default_flow):
    flow = default_flow
    assert (flow.features, flow.hidden_features, flow.num_layers) == (POSE_6D_DIM, 1024, 4)
    assert (flow.num_blocks_per_layer, flow.context_features) == (2, 2048)
    assert flow.dropout_probability == 0.5 and flow.batch_norm
    assert sum(p.numel() for p in flow.parameters()) == 25_893_856  # SPEC: 25.9 M

    keys = list(flow.state_dict())
    by_transform: dict[int, set[str]] = {}
    for key in keys:
        assert key.startswith("_transform._transforms."), key
        index, name = key.removeprefix("_transform._transforms.").split(".", 1)
        by_transform.setdefault(int(index), set()).add(name)
    assert sorted(by_transform) == list(range(12))
    coupling = {"identity_features", "transform_features"}
    coupling |= {f"transform_net.{layer}.{p}" for layer in ("initial_layer", "final_layer")
                 for p in ("weight", "bias")}
    for block in range(2):
        for index in range(2):
            coupling |= {f"transform_net.blocks.{block}.linear_layers.{index}.{p}"
                         for p in ("weight", "bias")}
            coupling |= {f"transform_net.blocks.{block}.batch_norm_layers.{index}.{p}"
                         for p in ("weight", "bias", "running_mean", "running_var",
                                   "num_batches_tracked")}
    for layer in range(4):
        assert by_transform[3 * layer] == ACTNORM_KEYS
        assert by_transform[3 * layer + 1] == LU_KEYS
        assert by_transform[3 * layer + 2] == coupling

    state = flow.state_dict()
    first_net = "_transform._transforms.2.transform_net."
    assert state[first_net + "initial_layer.weight"].shape == (1024, 72 + 2048)
    assert state[first_net + "blocks.0.linear_layers.0.weight"].shape == (1024, 1024)
    even, odd = torch.arange(0, 144, 2), torch.arange(1, 144, 2)
    assert torch.equal(state["_transform._transforms.2.identity_features"], even)
    assert torch.equal(state["_transform._transforms.2.transform_features"], odd)
    assert torch.equal(state["_transform._transforms.5.identity_features"], odd)
    # Original initialisations: final layer U(±0.01/√H), last block linear U(±1e-3).
    bound = 0.01 / 1024**0.5
    assert state[first_net + "final_layer.weight"].abs().max() <= bound
    assert state[first_net + "final_layer.bias"].abs().max() <= bound
    assert state[first_net + "final_layer.weight"].abs().max() > 0.9 * bound
    assert state[first_net + "blocks.1.linear_layers.1.weight"].abs().max() <= 1e-3


def test_default_samples_decode_to_rotations(default_flow):
    generator = torch.Generator().manual_seed(0)
    context = torch.randn(2, 2048, generator=generator)
    drawn = default_flow.sample(8, context, generator=generator)
    assert drawn.samples.shape == (2, 8, POSE_6D_DIM)
    rot6d = drawn.samples.reshape(2, 8, NUM_SMPL_JOINTS, 6)
    first, second = rot6d[..., :3], rot6d[..., 3:]
    cross = torch.linalg.cross(first, second).norm(dim=-1)
    sine = cross / (first.norm(dim=-1) * second.norm(dim=-1))
    assert sine.min() > 1e-3  # no degenerate pair of columns
    rotations = rot6d_to_matrix(rot6d)
    torch.testing.assert_close(rotations[..., 0], torch.nn.functional.normalize(first, dim=-1))
    eye = torch.eye(3).expand_as(rotations)
    torch.testing.assert_close(rotations.transpose(-1, -2) @ rotations, eye, rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.linalg.det(rotations), torch.ones(2, 8, 24), rtol=0, atol=1e-5)


def test_default_fast_path_and_mode(default_flow):
    flow = default_flow
    generator = torch.Generator().manual_seed(1)
    context = torch.randn(3, 2048, generator=generator)
    latents = torch.randn(3, 4, POSE_6D_DIM, generator=generator)
    drawn = flow.sample(context=context, z=latents)
    plain, _ = flow._transform.inverse(latents.reshape(12, -1), context.repeat_interleave(4, 0))
    torch.testing.assert_close(drawn.samples.reshape(12, -1), plain, rtol=1e-5, atol=1e-5)
    log_prob, z = flow.log_prob(drawn.samples, context)
    torch.testing.assert_close(z, latents, rtol=0, atol=1e-4)
    torch.testing.assert_close(log_prob, drawn.log_prob, rtol=0, atol=1e-3)
    mode = flow.mode(context)
    assert torch.equal(mode.log_prob, mode.log_prob[:1].expand(3, 1))
