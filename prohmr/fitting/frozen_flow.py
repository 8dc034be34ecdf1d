"""Sampling a ConditionalGlow whose weights do not change: the flow half of fitting's inner loop.

Fitting maps latents to poses (``z → θ``, the flow's inverse) hundreds of times with fixed
weights and fixed contexts. :class:`FrozenFlowSampler` precomputes everything that depends
only on them, once:

- the context half of every coupling net's first layer (as
  :meth:`~prohmr.flows.ConditionalGlow.precompute_context`);
- each layer's LULinear inverse and ActNorm inverse, fused into one matrix and one offset
  (``x = y A + c``) instead of two triangular solves and an affine map per call;
- the BatchNorm layers of the residual blocks as per-feature scales and shifts (eval mode),
  one fused multiply-add each;
- one feature permutation (even indices first, then odd ones) under which every coupling's
  passed-through and transformed halves are contiguous slices, so no call gathers or scatters
  features.

The result equals :meth:`~prohmr.flows.ConditionalGlow.sample` in eval mode up to round-off
(tested against it, gradients included); it computes samples only, not log-probabilities.
The large weight matrices are used in place, the small precomputed parts are snapshots: build
a new sampler if the weights change.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from nflows.transforms import AdditiveCouplingTransform
from torch import nn

from prohmr.flows import ActNorm, ConditionalGlow, LULinear, ResidualNet

__all__ = ["FrozenFlowSampler"]

_TRANSFORMS_PER_LAYER = 3


def _slice_of(positions: torch.Tensor) -> slice:
    """The contiguous slice holding ``positions`` (ascending), or ValueError."""
    start = int(positions[0])
    expected = torch.arange(start, start + len(positions), device=positions.device)
    if not torch.equal(positions, expected):
        raise ValueError("FrozenFlowSampler: a coupling mask is not alternating")
    return slice(start, start + len(positions))


def _batch_norm_affine(batch_norm: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` of a BatchNorm layer in eval mode."""
    scale = batch_norm.weight * torch.rsqrt(batch_norm.running_var + batch_norm.eps)
    return scale, batch_norm.bias - batch_norm.running_mean * scale


class _Block:
    """One residual block: ``u + L1(relu(BN1(L0(relu(BN0(u))))))`` (dropout is off in eval)."""

    def __init__(self, block: nn.Module) -> None:
        # Detached views share the weights' memory: no copy, and no gradient reaches them.
        self.layers = [
            (layer.weight.detach(), layer.bias.detach()) for layer in block.linear_layers
        ]
        self.normalise = bool(block.use_batch_norm)
        if self.normalise:
            self.affine = [_batch_norm_affine(norm) for norm in block.batch_norm_layers]

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = inputs
        if self.normalise:
            scale, shift = self.affine[0]
            hidden = torch.addcmul(shift, hidden, scale)
        hidden = F.linear(hidden.relu(), *self.layers[0])
        if self.normalise:
            scale, shift = self.affine[1]
            hidden = torch.addcmul(shift, hidden, scale)
        return F.linear(hidden.relu(), *self.layers[1]) + inputs


class _Layer:
    """Inverse of one ActNorm → LULinear → additive coupling layer, in permuted features."""

    def __init__(
        self,
        actnorm: ActNorm,
        linear: LULinear,
        coupling: AdditiveCouplingTransform,
        position: torch.Tensor,
        permutation: torch.Tensor,
        context: Optional[torch.Tensor],
    ) -> None:
        net = coupling.transform_net
        if not isinstance(net, ResidualNet):
            raise ValueError("FrozenFlowSampler: coupling nets must be ResidualNets")
        self.passed = _slice_of(position[coupling.identity_features])
        self.changed = _slice_of(position[coupling.transform_features])
        self.passed_first = self.passed.start == 0
        initial = net.initial_layer
        self.initial_t = initial.weight[:, : net.in_features].t()
        if context is None:
            self.projection = initial.bias[None]
        else:
            self.projection = net.project_context(context)
        self.blocks = [_Block(block) for block in net.blocks]
        self.final = (net.final_layer.weight.detach(), net.final_layer.bias.detach())
        # LULinear then ActNorm, inverted and fused: x = ((y - b) W^-1ᵀ - shift) / scale.
        inverse_t = linear.weight_inverse().t()[permutation][:, permutation]
        inverse_scale = torch.exp(-actnorm.log_scale)[permutation]
        self.affine = inverse_t * inverse_scale
        self.offset = -(linear.bias[permutation] @ inverse_t + actnorm.shift[permutation])
        self.offset = self.offset * inverse_scale

    def __call__(self, inputs: torch.Tensor, rows: Optional[torch.Tensor]) -> torch.Tensor:
        passed, changed = inputs[:, self.passed], inputs[:, self.changed]
        projection = self.projection if rows is None else self.projection[rows]
        hidden = torch.addmm(projection, passed, self.initial_t)
        for block in self.blocks:
            hidden = block(hidden)
        changed = changed - F.linear(hidden, *self.final)
        joined = torch.cat([passed, changed] if self.passed_first else [changed, passed], dim=1)
        return torch.addmm(self.offset, joined, self.affine)


class FrozenFlowSampler:
    """``z → x`` of a :class:`~prohmr.flows.ConditionalGlow` with fixed weights and contexts.

    *Arguments*
        flow: the flow, in eval mode (its BatchNorm layers use running statistics).
        context: ``(B, C)`` the contexts, or None for an unconditional flow.

    Call it with ``z (P, D)`` and, for a conditional flow, ``rows (P,)``: the context row of
    every latent (default: row ``p`` for latent ``p``, i.e. ``P = B``). Returns ``(P, D)``.
    Gradients reach ``z``, never the weights.

    *Example*
        >>> _ = torch.manual_seed(0)
        >>> flow = ConditionalGlow(features=6, hidden_features=16, num_layers=2,
        ...                        num_blocks_per_layer=1, context_features=4).eval()
        >>> context, z = torch.randn(3, 4), torch.randn(3, 6)
        >>> samples = FrozenFlowSampler(flow, context)(z)
        >>> reference = flow.sample(context=context, z=z[:, None]).samples[:, 0]
        >>> bool(torch.allclose(samples, reference, atol=1e-5))
        True
    """

    def __init__(self, flow: ConditionalGlow, context: Optional[torch.Tensor] = None) -> None:
        if not isinstance(flow, ConditionalGlow):
            raise ValueError(
                f"FrozenFlowSampler: `flow` must be a ConditionalGlow, got {type(flow).__name__}"
            )
        if flow.training:
            raise ValueError("FrozenFlowSampler: the flow must be in eval mode")
        if flow.is_conditional != (context is not None):
            raise ValueError(
                "FrozenFlowSampler: pass a (B, C) `context` for a conditional flow and None "
                "for an unconditional one"
            )
        transforms = flow._transform._transforms
        device = flow.device
        features = torch.arange(flow.features, device=device)
        self.permutation = torch.cat([features[0::2], features[1::2]])
        self.position = torch.argsort(self.permutation)
        with torch.no_grad():
            context = None if context is None else context.to(device=device, dtype=flow.dtype)
            self.layers = [
                _Layer(
                    *transforms[index : index + _TRANSFORMS_PER_LAYER],
                    self.position,
                    self.permutation,
                    context,
                )
                for index in range(0, len(transforms), _TRANSFORMS_PER_LAYER)
            ]
        self.conditional = flow.is_conditional

    def __call__(self, z: torch.Tensor, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Samples ``(P, D)`` for latents ``(P, D)``; ``rows (P,)`` picks their contexts."""
        if not self.conditional:
            rows = None
        elif rows is None:
            rows = torch.arange(z.shape[0], device=z.device)
        hidden = z[:, self.permutation]
        for layer in reversed(self.layers):
            hidden = layer(hidden, rows)
        return hidden[:, self.position]
