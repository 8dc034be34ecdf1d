"""A ``torch.distributions`` facade over :class:`~prohmr.flows.ConditionalGlow`.

``flow.distribution(context)`` (or ``flow(context)``) returns a :class:`GlowDistribution`
with ``batch_shape (B,)`` and ``event_shape (D,)``. As everywhere in ``torch.distributions``,
**sample axes come first**: ``dist.sample((n,))`` has shape ``(n, B, D)`` and
``dist.log_prob(x)`` takes ``(..., B, D)`` and returns ``(..., B)``. The flow's own
:meth:`~prohmr.flows.ConditionalGlow.sample` uses ``(B, N, D)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch.distributions import Distribution, constraints

from prohmr.flows.context import FlowContext

if TYPE_CHECKING:
    from prohmr.flows.glow import ConditionalGlow

__all__ = ["GlowDistribution"]


class GlowDistribution(Distribution):
    """``p(x | context)`` of a :class:`~prohmr.flows.ConditionalGlow` as a distribution.

    Build it with :meth:`ConditionalGlow.distribution`. Sampling is reparameterised
    (``rsample``); ``sample`` is ``rsample`` without gradients. Shapes use ``S`` for the
    sample shape: ``rsample(S) -> (*S, B, D)``, ``log_prob((*S, B, D)) -> (*S, B)``,
    ``mode -> (B, D)``; without a context ``B`` is absent.

    *Arguments*
        flow: the flow.
        context: ``(B, C)`` context, a :class:`FlowContext` of ``B`` rows, or ``None`` for an
            unconditional flow.

    *Example*
        >>> from prohmr.flows import ConditionalGlow
        >>> _ = torch.manual_seed(0)
        >>> flow = ConditionalGlow(features=4, hidden_features=8, num_layers=2,
        ...                        num_blocks_per_layer=1, context_features=3).eval()
        >>> dist = flow.distribution(torch.randn(2, 3))
        >>> x = dist.rsample((5,))
        >>> x.shape, dist.log_prob(x).shape, dist.mode.shape
        (torch.Size([5, 2, 4]), torch.Size([5, 2]), torch.Size([2, 4]))
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self, flow: ConditionalGlow, context: torch.Tensor | FlowContext | None
    ) -> None:
        self.flow = flow
        self.context = context
        if context is None:
            batch_shape = torch.Size()
        elif isinstance(context, FlowContext):
            batch_shape = torch.Size([context.batch_size])
        else:
            batch_shape = torch.Size([context.shape[0]])
        super().__init__(batch_shape, torch.Size([flow.features]), validate_args=False)

    def rsample_and_log_prob(
        self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples ``(*S, B, D)`` and their log-probabilities ``(*S, B)`` in one pass."""
        sample_shape = torch.Size(sample_shape)
        drawn = self.flow.sample(max(math.prod(sample_shape), 1), self.context)
        samples = drawn.samples.movedim(1, 0)
        log_prob = drawn.log_prob.movedim(1, 0)
        if self.context is None:
            samples, log_prob = samples[:, 0], log_prob[:, 0]
        return (
            samples.reshape(sample_shape + self.batch_shape + self.event_shape),
            log_prob.reshape(sample_shape + self.batch_shape),
        )

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = torch.Size()) -> torch.Tensor:
        """Reparameterised samples of shape ``(*S, B, D)``."""
        return self.rsample_and_log_prob(sample_shape)[0]

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """``log p(value | context)`` for ``value`` of shape ``(*S, B, D)``; returns ``(*S, B)``."""
        expected = self.batch_shape + self.event_shape
        if (
            not isinstance(value, torch.Tensor)
            or value.ndim < len(expected)
            or value.shape[value.ndim - len(expected) :] != expected
        ):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(
                f"GlowDistribution.log_prob: `value` must have shape (..., "
                f"{', '.join(str(size) for size in expected)}), got {shape}"
            )
        sample_shape = value.shape[: value.ndim - len(expected)]
        points = value.reshape(-1, *expected)
        if self.context is None:
            points = points.unsqueeze(1)
        log_prob, _ = self.flow.log_prob(points.movedim(0, 1), self.context)
        return log_prob.movedim(1, 0).reshape(sample_shape + self.batch_shape)

    @property
    def mode(self) -> torch.Tensor:
        """The sample at ``z = 0``, ``(B, D)``."""
        samples = self.flow.mode(self.context).samples[:, 0]
        return samples.reshape(self.batch_shape + self.event_shape)
