"""One parametrised suite over several flow configurations (see conftest.CONFIGS)."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from prohmr.flows import ACTNORM_MIN_STD, ConditionalGlow, FlowContext, FlowSample, transforms


def base_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * z.square().sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def spec_reference(
    flow: ConditionalGlow, x: torch.Tensor, context: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute-force eval-mode ProHMR Glow in float64, written from SPEC §3 and the key names.

    ``x`` is ``(M, D)``, ``context`` ``(M, C)``; returns ``log_prob (M,)`` and ``z (M, D)``.
    """
    state = {key: value.double() for key, value in flow.state_dict().items()}
    features = flow.features
    z = x.double().clone()
    logdet = torch.zeros(z.shape[0], dtype=torch.float64)
    for layer in range(flow.num_layers):
        prefix = f"_transform._transforms.{3 * layer}."
        z = z * state[prefix + "log_scale"].exp() + state[prefix + "shift"]
        logdet += state[prefix + "log_scale"].sum()

        prefix = f"_transform._transforms.{3 * layer + 1}."
        lower = torch.eye(features, dtype=torch.float64)
        rows, cols = torch.tril_indices(features, features, offset=-1)
        lower[rows, cols] = state[prefix + "lower_entries"]
        diagonal = F.softplus(state[prefix + "unconstrained_upper_diag"]) + 1e-3
        upper = torch.diag(diagonal)
        rows, cols = torch.triu_indices(features, features, offset=1)
        upper[rows, cols] = state[prefix + "upper_entries"]
        z = z @ (lower @ upper).T + state[prefix + "bias"]
        logdet += diagonal.log().sum()

        prefix = f"_transform._transforms.{3 * layer + 2}.transform_net."
        # Layer 0 passes the even indices through and transforms the odd ones; roles swap.
        passive = torch.arange(layer % 2, features, 2)
        active = torch.arange(1 - layer % 2, features, 2)
        net_input = z[:, passive] if context is None else torch.cat((z[:, passive], context), 1)
        hidden = net_input @ state[prefix + "initial_layer.weight"].T
        hidden = hidden + state[prefix + "initial_layer.bias"]
        for block in range(flow.num_blocks_per_layer):
            block_prefix = f"{prefix}blocks.{block}."
            temps = hidden
            for index in range(2):
                if flow.batch_norm:
                    bn = f"{block_prefix}batch_norm_layers.{index}."
                    temps = (temps - state[bn + "running_mean"]) / torch.sqrt(
                        state[bn + "running_var"] + 1e-5
                    ) * state[bn + "weight"] + state[bn + "bias"]
                temps = torch.relu(temps)
                linear = f"{block_prefix}linear_layers.{index}."
                temps = temps @ state[linear + "weight"].T + state[linear + "bias"]
            hidden = hidden + temps
        shift = hidden @ state[prefix + "final_layer.weight"].T + state[prefix + "final_layer.bias"]
        z = z.clone()
        z[:, active] = z[:, active] + shift
    return base_log_prob(z) + logdet, z


def rows_of(context: torch.Tensor | None, num: int) -> torch.Tensor | None:
    return None if context is None else context.repeat_interleave(num, dim=0)


# ----------------------------------------------------------------------------- the suite
def test_shapes(make_flow, flow_inputs):
    flow = make_flow(torch.float32)
    x, context = flow_inputs(flow, batch=3, num=4)
    log_prob, z = flow.log_prob(x, context)
    assert log_prob.shape == (3, 4) and z.shape == (3, 4, flow.features)
    log_prob, z = flow.log_prob(x[:, 0], context)
    assert log_prob.shape == (3,) and z.shape == (3, flow.features)

    drawn = flow.sample(5, context)
    batch = 3 if flow.is_conditional else 1
    assert isinstance(drawn, FlowSample)
    assert drawn.samples.shape == (batch, 5, flow.features) == drawn.z.shape
    assert drawn.log_prob.shape == (batch, 5)
    samples, log_prob, z = drawn
    assert samples is drawn.samples and z is drawn.z

    drawn = flow.sample(context=context, z=torch.randn(3, 2, flow.features))
    assert drawn.samples.shape == (3, 2, flow.features)
    mode = flow.mode(context)
    assert mode.samples.shape == (batch, 1, flow.features)
    assert torch.equal(mode.z, torch.zeros_like(mode.z))


def test_every_parameter_receives_a_gradient(make_flow, flow_inputs):
    flow = make_flow(torch.float64).train()
    x, context = flow_inputs(flow, batch=6, num=3)
    x.requires_grad_(True)
    if context is not None:
        context.requires_grad_(True)
    z = torch.randn(6, 2, flow.features, dtype=torch.float64, requires_grad=True)
    log_prob, _ = flow.log_prob(x, context)
    drawn = flow.sample(context=context, z=z)
    (-log_prob.mean() + drawn.samples.square().mean() - drawn.log_prob.mean()).backward()
    for name, parameter in flow.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    for tensor in (x, z) if context is None else (x, z, context):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def test_invertibility_float64(make_flow, flow_inputs):
    flow = make_flow(torch.float64)
    x, context = flow_inputs(flow, batch=4, num=3)
    _, z = flow.log_prob(x, context)
    back = flow.sample(context=context, z=z).samples
    torch.testing.assert_close(back, x, rtol=0, atol=1e-10)
    again = flow.log_prob(flow.sample(context=context, z=x).samples, context)[1]
    torch.testing.assert_close(again, x, rtol=0, atol=1e-10)


def test_logdet_matches_autograd_jacobian(make_flow, flow_inputs):
    flow = make_flow(torch.float64)
    x, context = flow_inputs(flow, batch=3, num=1)
    log_prob, z = flow.log_prob(x[:, 0], context)
    for row in range(3):
        row_context = None if context is None else context[row : row + 1]

        def to_latent(point: torch.Tensor) -> torch.Tensor:
            return flow.log_prob(point[None], row_context)[1][0]

        jacobian = torch.autograd.functional.jacobian(to_latent, x[row, 0])
        sign, logabsdet = torch.linalg.slogdet(jacobian)
        assert sign != 0
        expected = base_log_prob(z[row]) + logabsdet
        torch.testing.assert_close(log_prob[row], expected, rtol=0, atol=1e-9)


def test_matches_independent_reference(make_flow, randomise_flow, flow_inputs, config):
    torch.manual_seed(0)
    flow = ConditionalGlow(**config)
    # Tiny running variances make the BatchNorm eps visible (1e-5 vs nflows' 1e-3).
    randomise_flow(flow, seed=3, min_running_var=1e-4)
    flow = flow.double().eval()
    x, context = flow_inputs(flow, batch=3, num=2)
    log_prob, z = flow.log_prob(x, context)
    expected_log_prob, expected_z = spec_reference(flow, x.reshape(6, -1), rows_of(context, 2))
    torch.testing.assert_close(z.reshape(6, -1), expected_z, rtol=0, atol=1e-9)
    torch.testing.assert_close(log_prob.reshape(6), expected_log_prob, rtol=0, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_log_prob_of_samples_equals_sampling_log_prob(make_flow, flow_inputs, dtype):
    flow = make_flow(dtype)
    _, context = flow_inputs(flow, batch=3, num=1)
    drawn = flow.sample(4, context, generator=torch.Generator().manual_seed(5))
    log_prob, z = flow.log_prob(drawn.samples, context)
    tolerance = 1e-9 if dtype == torch.float64 else 2e-4
    torch.testing.assert_close(z, drawn.z, rtol=0, atol=tolerance)
    torch.testing.assert_close(log_prob, drawn.log_prob, rtol=0, atol=10 * tolerance)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_fast_path_matches_plain_path(make_flow, flow_inputs, mode):
    flow = make_flow(torch.float32)
    flow.train(mode == "train")
    x, context = flow_inputs(flow, batch=4, num=5)
    rows = x.reshape(20, -1)

    torch.manual_seed(11)  # identical dropout masks for both paths
    plain_z, plain_logdet = flow._transform(rows, context=rows_of(context, 5))
    torch.manual_seed(11)
    log_prob, z = flow.log_prob(x, context)
    torch.testing.assert_close(z.reshape(20, -1), plain_z, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        log_prob.reshape(20), base_log_prob(plain_z) + plain_logdet, rtol=1e-5, atol=1e-4
    )

    latents = torch.randn(4, 5, flow.features)
    torch.manual_seed(12)
    plain_x, _ = flow._transform.inverse(latents.reshape(20, -1), context=rows_of(context, 5))
    torch.manual_seed(12)
    drawn = flow.sample(context=context, z=latents)
    torch.testing.assert_close(drawn.samples.reshape(20, -1), plain_x, rtol=1e-5, atol=1e-5)

    if context is not None:
        precomputed = flow.precompute_context(context)
        torch.manual_seed(11)
        again, _ = flow.log_prob(x, precomputed)
        torch.manual_seed(11)
        reference, _ = flow.log_prob(x, context)
        assert torch.equal(again, reference)


def test_any_number_of_latents_per_context(make_flow, flow_inputs):
    flow = make_flow(torch.float64)
    _, context = flow_inputs(flow, batch=2, num=1)
    latents = torch.randn(2, 6, flow.features, dtype=torch.float64)
    drawn = flow.sample(context=context, z=latents)
    for n in range(6):
        single = flow.sample(context=context, z=latents[:, n : n + 1])
        torch.testing.assert_close(drawn.samples[:, n], single.samples[:, 0], rtol=0, atol=1e-12)
        torch.testing.assert_close(drawn.log_prob[:, n], single.log_prob[:, 0], rtol=0, atol=1e-12)


def test_mode_log_prob_is_identical_across_contexts(make_flow):
    flow = make_flow(torch.float32)
    context = torch.randn(7, flow.context_features) if flow.is_conditional else None
    mode = flow.mode(context)
    assert torch.equal(mode.log_prob, mode.log_prob[:1].expand_as(mode.log_prob))
    # log N(0; 0, I) plus every layer's data-independent log-determinant.
    expected = -0.5 * flow.features * math.log(2 * math.pi)
    for layer in range(flow.num_layers):
        actnorm, lu = flow._transform._transforms[3 * layer : 3 * layer + 2]
        expected += actnorm.log_scale.double().sum().item()
        expected += (F.softplus(lu.unconstrained_upper_diag.double()) + 1e-3).log().sum().item()
    assert mode.log_prob[0, 0].item() == pytest.approx(expected, abs=1e-4)
    random = flow.sample(50, context, generator=torch.Generator().manual_seed(0))
    assert (random.log_prob < mode.log_prob).all()


def test_actnorm_initialises_once_in_training_mode(make_flow, config):
    flow = make_flow(torch.float64, randomised=False).train()
    generator = torch.Generator().manual_seed(2)
    x = 3.0 + 2.0 * torch.randn(16, flow.features, generator=generator, dtype=torch.float64)
    x[:, 1] = 0.7  # a constant feature: std clamped instead of inf/NaN
    context = None
    if flow.is_conditional:
        context = torch.randn(16, flow.context_features, dtype=torch.float64)
    actnorms = flow._transform._transforms[::3]
    assert not any(bool(actnorm.initialized) for actnorm in actnorms)
    assert not flow.initialized

    flow.eval()
    flow.log_prob(x, context)  # eval mode never initialises
    assert not any(bool(actnorm.initialized) for actnorm in actnorms)

    flow.train()
    log_prob, z = flow.log_prob(x, context)
    assert torch.isfinite(log_prob).all() and torch.isfinite(z).all()
    assert all(bool(actnorm.initialized) for actnorm in actnorms) and flow.initialized
    std = x.std(dim=0).clamp_min(ACTNORM_MIN_STD)  # unbiased, as the original
    torch.testing.assert_close(actnorms[0].log_scale, -std.log())
    torch.testing.assert_close(actnorms[0].shift, -(x / std).mean(dim=0))
    assert actnorms[0].log_scale[1].item() == pytest.approx(-math.log(ACTNORM_MIN_STD))

    frozen = [actnorm.log_scale.detach().clone() for actnorm in actnorms]
    flow.log_prob(5.0 * x + 1.0, context)
    for actnorm, before in zip(actnorms, frozen):
        assert torch.equal(actnorm.log_scale, before)


def test_batch_norm_statistics_train_vs_eval(make_flow, flow_inputs, config):
    flow = make_flow(torch.float64)
    x, context = flow_inputs(flow, batch=8, num=2)
    batch_norms = [m for m in flow.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    expected_count = 2 * flow.num_layers * flow.num_blocks_per_layer if flow.batch_norm else 0
    assert len(batch_norms) == expected_count
    for batch_norm in batch_norms:
        assert batch_norm.eps == 1e-5

    before = [m.running_mean.clone() for m in batch_norms]
    first, _ = flow.log_prob(x, context)
    second, _ = flow.log_prob(x, context)
    assert torch.equal(first, second)  # eval: deterministic, statistics untouched
    assert all(torch.equal(m.running_mean, b) for m, b in zip(batch_norms, before))

    flow.train()
    torch.manual_seed(0)
    train_first, _ = flow.log_prob(x, context)
    train_second, _ = flow.log_prob(x, context)
    assert all(not torch.equal(m.running_mean, b) for m, b in zip(batch_norms, before))
    assert all(int(m.num_batches_tracked) == 2 for m in batch_norms)
    if flow.batch_norm or config["dropout_probability"] > 0:
        assert not torch.allclose(train_first, first)
    if config["dropout_probability"] > 0:
        assert not torch.equal(train_first, train_second)


def test_save_load_round_trip(make_flow, flow_inputs, config):
    flow = make_flow(torch.float32)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    restored = ConditionalGlow(**config).eval()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    x, context = flow_inputs(flow, batch=3, num=2)
    assert torch.equal(restored.log_prob(x, context)[0], flow.log_prob(x, context)[0])
    latents = torch.randn(3, 2, flow.features)
    assert torch.equal(
        restored.sample(context=context, z=latents).samples,
        flow.sample(context=context, z=latents).samples,
    )


def test_distribution_facade(make_flow, flow_inputs):
    flow = make_flow(torch.float64)
    _, context = flow_inputs(flow, batch=3, num=1)
    dist = flow.distribution(context)
    assert isinstance(dist, torch.distributions.Distribution)
    assert isinstance(flow(context), type(dist))
    batch = (3,) if flow.is_conditional else ()
    assert dist.batch_shape == batch and dist.event_shape == (flow.features,)

    x = dist.rsample((2, 4))
    assert x.shape == (2, 4, *batch, flow.features) and x.requires_grad
    assert not dist.sample((5,)).requires_grad
    log_prob = dist.log_prob(x)
    assert log_prob.shape == (2, 4, *batch)
    points = x.reshape(8, -1, flow.features).movedim(0, 1)  # (B, 8, D), samples second
    expected, _ = flow.log_prob(points, context)
    torch.testing.assert_close(log_prob.reshape(8, -1), expected.movedim(1, 0), rtol=0, atol=1e-10)

    samples, sample_log_prob = dist.rsample_and_log_prob((6,))
    torch.testing.assert_close(dist.log_prob(samples), sample_log_prob, rtol=0, atol=1e-9)
    torch.testing.assert_close(
        dist.mode, flow.mode(context).samples[:, 0].reshape(*batch, flow.features)
    )

    def monte_carlo_entropy(d: torch.distributions.Distribution) -> torch.Tensor:
        return -d.log_prob(d.rsample((16,))).mean()

    entropy = monte_carlo_entropy(dist)
    entropy.backward()
    assert all(p.grad is not None for p in flow.parameters())
    for _ in range(2):  # reusable across backward passes (projections are per call)
        dist.log_prob(x.detach()).sum().backward()


def test_autocast_region_runs_in_float32(make_flow, flow_inputs):
    flow = make_flow(torch.float32)
    x, context = flow_inputs(flow, batch=3, num=2)
    x16 = x.to(torch.bfloat16)
    context16 = None if context is None else context.to(torch.bfloat16)
    outside, _ = flow.log_prob(x16.float(), None if context is None else context16.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside, z = flow.log_prob(x16, context16)
        drawn = flow.sample(2, context16)
    assert inside.dtype == z.dtype == drawn.samples.dtype == torch.float32
    assert torch.equal(inside, outside)


def test_device_and_dtype(make_flow, flow_inputs, device, dtype):
    flow = make_flow(dtype).to(device)
    x, context = flow_inputs(flow, batch=2, num=3, dtype=dtype)
    x = x.to(device)
    context = None if context is None else context.to(device)
    log_prob, z = flow.log_prob(x, context)
    assert log_prob.device.type == device.type and log_prob.dtype == dtype
    drawn = flow.sample(context=context, z=z)
    tolerance = 1e-9 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(drawn.samples, x, rtol=0, atol=tolerance)
    assert drawn.samples.device.type == device.type


def test_precomputed_context_guards(make_flow, flow_inputs, config):
    flow = make_flow(torch.float64)
    x, context = flow_inputs(flow, batch=2, num=3)
    if context is None:
        with pytest.raises(ValueError, match="unconditional"):
            flow.precompute_context(torch.zeros(2, 3))
        with pytest.raises(ValueError, match="context"):
            flow.log_prob(x, torch.zeros(2, 3))
        return
    precomputed = flow.precompute_context(context)
    assert isinstance(precomputed, FlowContext) and precomputed.batch_size == 2
    latents = torch.randn(2, 4, flow.features, dtype=torch.float64)
    drawn = flow.sample(context=precomputed, z=latents)
    torch.testing.assert_close(flow.log_prob(drawn.samples, precomputed)[0], drawn.log_prob)
    with pytest.raises(ValueError, match="B=3"):
        flow.log_prob(torch.zeros(3, flow.features, dtype=torch.float64), precomputed)
    second_row = precomputed.select(torch.tensor([1]))
    torch.testing.assert_close(
        flow.log_prob(x[1:], second_row)[0], flow.log_prob(x[1:], context[1:])[0]
    )
    other = make_flow(torch.float64)
    with pytest.raises(ValueError, match="different flow"):
        other.log_prob(x, precomputed)
    optimiser = torch.optim.SGD(flow.parameters(), lr=0.1)
    (-flow.log_prob(x, context)[0].mean()).backward()
    optimiser.step()
    with pytest.raises(ValueError, match="changed"):
        flow.log_prob(x, precomputed)
    with pytest.raises(ValueError, match="changed"):
        flow.log_prob(x[1:], second_row)


def test_input_validation(make_flow, config):
    flow = make_flow(torch.float32)
    features, context_features = flow.features, flow.context_features
    context = torch.zeros(2, context_features) if flow.is_conditional else None
    with pytest.raises(ValueError, match="`x`"):
        flow.log_prob(torch.zeros(2, features + 1), context)
    with pytest.raises(ValueError, match="`x`"):
        flow.log_prob(torch.zeros(2, features, dtype=torch.long), context)
    with pytest.raises(ValueError, match="`z`"):
        flow.sample(context=context, z=torch.zeros(2, features))
    with pytest.raises(ValueError, match="num_samples"):
        flow.sample(3, context, z=torch.zeros(2, 2, features))
    with pytest.raises(ValueError, match="num_samples"):
        flow.sample(0, context)
    if flow.is_conditional:
        with pytest.raises(ValueError, match="`context`"):
            flow.log_prob(torch.zeros(2, features), torch.zeros(2, context_features + 1))
        with pytest.raises(ValueError, match="`context`"):
            flow.log_prob(torch.zeros(2, features))
        with pytest.raises(ValueError, match="rows"):
            flow.log_prob(torch.zeros(3, features), context)
    with pytest.raises(ValueError, match="value"):
        flow.distribution(context).log_prob(torch.zeros(5, 1, features + 1))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(features=1),
        dict(hidden_features=0),
        dict(num_layers=0),
        dict(context_features=-1),
        dict(dropout_probability=1.0),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any]):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ConditionalGlow(**{**dict(features=4, hidden_features=4, context_features=2), **kwargs})


@pytest.mark.parametrize("chunk_rows", [1, 4, 12])
def test_eval_chunking_matches_whole_batch(make_flow, flow_inputs, monkeypatch, chunk_rows):
    flow = make_flow(torch.float64)
    x, context = flow_inputs(flow, batch=3, num=5)
    latents = torch.randn(3, 5, flow.features, dtype=torch.float64)
    whole_log_prob, whole_z = flow.log_prob(x, context)
    whole_rows, _ = flow.log_prob(x[:, 0], context)  # one row per context: plain rows path
    whole_samples = flow.sample(context=context, z=latents).samples

    monkeypatch.setattr(transforms, "EVAL_CHUNK_ELEMENTS", chunk_rows * flow.hidden_features)
    log_prob, z = flow.log_prob(x, context)
    torch.testing.assert_close(z, whole_z, rtol=0, atol=1e-12)
    torch.testing.assert_close(log_prob, whole_log_prob, rtol=0, atol=1e-10)
    torch.testing.assert_close(flow.log_prob(x[:, 0], context)[0], whole_rows, rtol=0, atol=1e-10)
    samples = flow.sample(context=context, z=latents).samples
    torch.testing.assert_close(samples, whole_samples, rtol=0, atol=1e-12)
