"""FrozenFlowSampler: the same samples and gradients as ConditionalGlow.sample."""

from __future__ import annotations

import pytest
import torch

from prohmr.fitting.frozen_flow import FrozenFlowSampler
from prohmr.flows import ConditionalGlow

CONFIGS = {
    "conditional-bn": dict(features=144, hidden_features=32, num_layers=4,
                           num_blocks_per_layer=2, context_features=7),
    "unconditional-no-bn": dict(features=12, hidden_features=16, num_layers=3,
                                num_blocks_per_layer=1, context_features=0, batch_norm=False),
    "odd-features": dict(features=7, hidden_features=8, num_layers=2,
                         num_blocks_per_layer=1, context_features=3),
}


def _random_flow(config: dict, dtype: torch.dtype, device: torch.device) -> ConditionalGlow:
    """A flow far from its near-identity initialisation, BatchNorm statistics included."""
    torch.manual_seed(0)
    flow = ConditionalGlow(**config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in flow.named_parameters():
            if name.endswith(("lower_entries", "upper_entries")):
                scale = 0.5 / flow.features**0.5  # well-conditioned triangular factors
            elif parameter.ndim == 1:
                scale = 0.3
            else:
                scale = 0.5 / parameter.shape[-1] ** 0.5
            noise = torch.randn(parameter.shape, generator=generator) * scale
            parameter.add_(noise + (0.7 if "batch_norm" in name and "weight" in name else 0.0))
        for name, buffer in flow.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0.0, 0.2, generator=generator)
            elif name.endswith("running_var"):
                buffer.uniform_(0.3, 2.0, generator=generator)
    return flow.to(device=device, dtype=dtype).eval()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_samples_and_gradients_equal_the_flow(
    name: str, device: torch.device, dtype: torch.dtype
) -> None:
    flow = _random_flow(CONFIGS[name], dtype, device)
    generator = torch.Generator().manual_seed(2)
    context = None
    if flow.is_conditional:
        context = torch.randn(4, flow.context_features, generator=generator).to(device, dtype)
    rows = torch.tensor([3, 0, 0, 2, 1], device=device)
    z = torch.randn(5, flow.features, generator=generator).to(device, dtype).requires_grad_(True)
    sampler = FrozenFlowSampler(flow, context)
    samples = sampler(z, rows)
    reference = flow.sample(
        context=None if context is None else context[rows], z=z[:, None]
    ).samples[:, 0]
    tolerance = {torch.float64: 1e-10, torch.float32: 2e-4}[dtype]
    torch.testing.assert_close(samples, reference, rtol=tolerance, atol=tolerance)
    weights = torch.randn(samples.shape, generator=generator).to(device, dtype)
    (fast,) = torch.autograd.grad((samples * weights).sum(), z)
    (slow,) = torch.autograd.grad((reference * weights).sum(), z)
    torch.testing.assert_close(fast, slow, rtol=tolerance, atol=tolerance)
    assert all(p.grad is None for p in flow.parameters())


def test_default_rows_pair_latents_with_contexts() -> None:
    flow = _random_flow(CONFIGS["odd-features"], torch.float64, torch.device("cpu"))
    context = torch.randn(3, 3, dtype=torch.float64)
    z = torch.randn(3, 7, dtype=torch.float64)
    sampler = FrozenFlowSampler(flow, context)
    assert torch.equal(sampler(z), sampler(z, torch.arange(3)))


def test_rejects_what_it_cannot_reproduce() -> None:
    flow = ConditionalGlow(features=6, hidden_features=8, num_layers=1, context_features=2)
    with pytest.raises(ValueError, match="eval mode"):
        FrozenFlowSampler(flow.train(), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="context"):
        FrozenFlowSampler(flow.eval(), None)
    with pytest.raises(ValueError, match="ConditionalGlow"):
        FrozenFlowSampler(torch.nn.Linear(2, 2), None)  # type: ignore[arg-type]
