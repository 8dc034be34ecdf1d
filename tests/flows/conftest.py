"""Flow configurations and helpers shared by the flow tests (zuko-style: one suite, many flows)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
import torch

from prohmr.flows import ConditionalGlow

#: Small flows covering every option; the 144-d default is tested separately and sparingly.
CONFIGS: dict[str, dict[str, Any]] = {
    "cond-bn": dict(
        features=6, hidden_features=16, num_layers=2, num_blocks_per_layer=1,
        context_features=5, dropout_probability=0.0, batch_norm=True,
    ),
    "uncond-odd-nobn": dict(
        features=7, hidden_features=12, num_layers=3, num_blocks_per_layer=2,
        context_features=None, dropout_probability=0.5, batch_norm=False,
    ),
    "cond-4layers-dropout": dict(
        features=4, hidden_features=8, num_layers=4, num_blocks_per_layer=2,
        context_features=3, dropout_probability=0.5, batch_norm=True,
    ),
    "skeleton-48": dict(
        features=48, hidden_features=32, num_layers=2, num_blocks_per_layer=1,
        context_features=16, dropout_probability=0.5, batch_norm=True,
    ),
}


def randomise(flow: ConditionalGlow, seed: int = 0, min_running_var: float = 0.05) -> None:
    """Move every parameter and statistic away from its (near-identity) initialisation."""
    generator = torch.Generator().manual_seed(seed)

    def noise(tensor: torch.Tensor, scale: float) -> torch.Tensor:
        return scale * torch.randn(tensor.shape, generator=generator, dtype=torch.float64).to(
            tensor
        )

    with torch.no_grad():
        for name, parameter in flow.named_parameters():
            if name.endswith(("log_scale", "shift", "bias", "unconstrained_upper_diag")):
                parameter.copy_(noise(parameter, 0.3))
            elif name.endswith(("lower_entries", "upper_entries")):
                # Random triangular factors stay well conditioned at this scale.
                parameter.copy_(noise(parameter, 0.5 / flow.features**0.5))
            elif "batch_norm" in name:
                parameter.copy_(1.0 + noise(parameter, 0.2))
            else:
                fan_in = parameter.shape[-1]
                parameter.copy_(noise(parameter, 1.0 / fan_in**0.5))
        for name, buffer in flow.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(noise(buffer, 0.2))
            elif name.endswith("running_var"):
                uniform = torch.rand(buffer.shape, generator=generator, dtype=torch.float64)
                buffer.copy_((min_running_var + uniform).to(buffer))
            elif name.endswith("initialized"):
                buffer.fill_(True)


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Run the (tiny) flow tests on one thread: threads only add synchronisation here, and
    they make the suite's time depend on how busy the machine is."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=list(CONFIGS), ids=list(CONFIGS))
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """One flow configuration."""
    return dict(CONFIGS[request.param])


@pytest.fixture
def make_flow(config: dict[str, Any]) -> Callable[..., ConditionalGlow]:
    """Factory: ``make_flow(dtype=torch.float64, seed=0, randomised=True)`` in eval mode."""

    def build(
        dtype: torch.dtype = torch.float64, seed: int = 0, randomised: bool = True
    ) -> ConditionalGlow:
        torch.manual_seed(seed)
        flow = ConditionalGlow(**config)
        if randomised:
            randomise(flow, seed)
        return flow.to(dtype).eval()

    return build


def inputs_for(
    flow: ConditionalGlow, batch: int, num: int, seed: int = 1, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random ``x (B, N, D)`` and a context ``(B, C)`` (``None`` when unconditional)."""
    generator = torch.Generator().manual_seed(seed)
    dtype = dtype or flow.dtype
    x = torch.randn(batch, num, flow.features, generator=generator, dtype=torch.float64)
    context = None
    if flow.is_conditional:
        shape = (batch, flow.context_features)
        context = torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)
    return x.to(dtype), context


@pytest.fixture
def randomise_flow() -> Callable[..., None]:
    """The :func:`randomise` helper."""
    return randomise


@pytest.fixture
def flow_inputs() -> Callable[..., tuple[torch.Tensor, torch.Tensor | None]]:
    """The :func:`inputs_for` helper."""
    return inputs_for
