"""Precomputed conditioning for the flow's fast path (SPEC §3, "Speed facts").

The initial layer of every coupling net reads ``[x_identity, context]``. Its context half,
``W_c @ context + b``, depends only on the context, so it can be computed once per context
row and broadcast over all the samples of that row: when sampling many hypotheses per image,
when scoring several poses per image, and across the iterations of fitting, where the
context never changes. A :class:`FlowContext` holds those projections, one ``(B, H)``
tensor per coupling net; :meth:`prohmr.flows.ConditionalGlow.precompute_context` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

__all__ = ["FlowContext"]


def _weight_state(layer: nn.Linear) -> tuple[int, int, int, int]:
    """Identity and in-place version counters of a layer's weight and bias."""
    return (
        layer.weight.data_ptr(),
        layer.weight._version,
        layer.bias.data_ptr(),
        layer.bias._version,
    )


@dataclass(frozen=True, eq=False)
class FlowContext:
    """Context projections of one flow for a fixed batch of contexts.

    Build it with :meth:`ConditionalGlow.precompute_context` and pass it wherever the flow
    takes ``context=``. It is tied to the flow and to the weights it was computed with: using
    it with another flow, or after the initial-layer weights changed (an optimiser step, a
    ``load_state_dict``), raises ``ValueError``; compute a new one then. If the context
    requires grad, the projections keep its graph, like any other intermediate tensor.

    *Fields*
        context: ``(B, C)`` the context it was computed from.
        projections: coupling net -> ``(B, H)`` context half of its initial layer, bias
            included.
    """

    context: torch.Tensor
    projections: Mapping[nn.Module, torch.Tensor] = field(repr=False)
    _weight_states: Mapping[nn.Module, tuple[int, int, int, int]] = field(repr=False)

    @classmethod
    def from_projections(
        cls, context: torch.Tensor, projections: Mapping[nn.Module, torch.Tensor]
    ) -> FlowContext:
        """Wrap projections computed by coupling nets that expose ``initial_layer``.

        *Arguments*
            context: ``(B, C)`` the context.
            projections: coupling net -> ``(B, H)`` projection.

        *Returns*
            The :class:`FlowContext`.
        """
        states = {net: _weight_state(net.initial_layer) for net in projections}
        return cls(context, dict(projections), states)

    @property
    def batch_size(self) -> int:
        """Number of context rows ``B``."""
        return int(self.context.shape[0])

    def select(self, rows: torch.Tensor | slice) -> FlowContext:
        """The :class:`FlowContext` of a subset of the context rows.

        *Arguments*
            rows: index of the rows to keep (``LongTensor``, boolean mask or slice).

        *Returns*
            A :class:`FlowContext` over those rows, still tied to the original weights.
        """
        projections = {net: projection[rows] for net, projection in self.projections.items()}
        return FlowContext(self.context[rows], projections, self._weight_states)

    def projection(self, net: nn.Module) -> torch.Tensor:
        """The ``(B, H)`` projection for ``net``; ``ValueError`` if absent or stale."""
        projection = self.projections.get(net)
        if projection is None:
            raise ValueError(
                "FlowContext: this context was precomputed by a different flow; "
                "call precompute_context on the flow that uses it"
            )
        if self._weight_states[net] != _weight_state(net.initial_layer):
            raise ValueError(
                "FlowContext: the flow's weights changed since this context was "
                "precomputed; call precompute_context again"
            )
        return projection
