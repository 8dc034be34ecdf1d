"""The building blocks of ProHMR's Glow, on PyPI ``nflows`` (SPEC §3).

Stock ``nflows`` differs from the fork the original was trained with in ways that change
numbers; each class here subclasses or replaces exactly the part that differs and keeps the
attribute names, so that state-dict keys match the original checkpoints:

- :class:`ActNorm`: data initialisation clamps the std at :data:`ACTNORM_MIN_STD` (stock
  ``nflows`` produces inf/NaN on a constant feature).
- :class:`LULinear`: the inverse uses ``torch.linalg.solve_triangular`` instead of the
  deprecated ``torch.triangular_solve`` and builds its identity on the right device; the
  cache stays off, so a weight update can never be served a stale matrix.
- :class:`ResidualBlock`: BatchNorm eps :data:`BATCH_NORM_EPS` (stock: 1e-3) and no context.
- :class:`ResidualNet`: the context enters **only** the initial layer (stock ``nflows``
  also feeds it to every block through a gated context layer), the final layer starts
  near zero, and a :class:`~prohmr.flows.context.FlowContext` replaces the context half of
  the initial layer by a precomputed projection.
- :class:`AdditiveCoupling`: stock ``AdditiveCouplingTransform`` without its unit scale
  (``x * 1 + shift`` and ``sum(log 1)`` are exactly ``x + shift`` and 0, in fewer passes).

Speed-ups that leave the numbers unchanged up to round-off (measured, see
``docs/benchmarks.md``): eval-mode BatchNorm as one multiply-add, in-place ReLU and skip,
eval-mode chunking of large batches, one LU product per call for large batches, and no
gradient for a context that does not need one.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
from nflows.nn.nets.resnet import ResidualBlock as _NflowsResidualBlock
from nflows.transforms import ActNorm as _NflowsActNorm
from nflows.transforms import AdditiveCouplingTransform as _NflowsAdditiveCoupling
from nflows.transforms import LULinear as _NflowsLULinear
from nflows.utils.torchutils import create_alternating_binary_mask
from torch import nn

from prohmr.flows.context import FlowContext

__all__ = [
    "ACTNORM_MIN_STD",
    "BATCH_NORM_EPS",
    "EVAL_CHUNK_ELEMENTS",
    "FINAL_LAYER_INIT_SCALE",
    "ActNorm",
    "AdditiveCoupling",
    "LULinear",
    "ResidualBlock",
    "ResidualNet",
    "coupling_mask",
]

#: Lower bound on the per-feature std in ActNorm's data initialisation.
ACTNORM_MIN_STD: float = 1e-3
#: BatchNorm eps inside the coupling nets (PyTorch's default, as in the original fork).
BATCH_NORM_EPS: float = 1e-5
#: In eval mode a coupling net processes at most this many hidden activations (rows x
#: hidden features) at a time: 4 MB in float32, small enough to stay in cache.
EVAL_CHUNK_ELEMENTS: int = 2**20
#: The final layer of a coupling net is initialised U(±scale/√hidden), weight and bias, so
#: that every coupling starts close to the identity.
FINAL_LAYER_INIT_SCALE: float = 0.01


def coupling_mask(features: int, layer: int) -> torch.Tensor:
    """Mask of the coupling transform of ``layer`` (``> 0``: transformed, else passed through).

    Layer 0 transforms the odd indices and passes the even ones through; the roles swap every
    layer (SPEC §3). This is ``nflows``' ``create_alternating_binary_mask`` with
    ``even = (layer is odd)``.

    *Arguments*
        features: number of features ``D``.
        layer: index of the flow layer, from 0.

    *Returns*
        ``(D,)`` uint8 mask.

    *Example*
        >>> coupling_mask(5, 0).tolist(), coupling_mask(5, 1).tolist()
        ([0, 1, 0, 1, 0], [1, 0, 1, 0, 1])
    """
    return create_alternating_binary_mask(features, even=layer % 2 == 1)


class ActNorm(_NflowsActNorm):
    """``nflows`` ActNorm with the original's clamped data initialisation.

    Forward: ``y = exp(log_scale) * x + shift`` on ``(M, D)`` rows; log|det J| =
    ``sum(log_scale)``. In training mode the first forward call sets ``log_scale`` and
    ``shift`` so that its outputs have zero mean and unit (unbiased) std per feature, and
    sets the persistent ``initialized`` flag.
    """

    def _initialize(self, inputs: torch.Tensor) -> None:
        if inputs.shape[0] < 2:
            raise ValueError(
                "ActNorm: data initialisation needs at least 2 rows, got "
                f"{inputs.shape[0]}; run the first training-mode log_prob on a larger batch"
            )
        with torch.no_grad():
            std = inputs.std(dim=0).clamp_min(ACTNORM_MIN_STD)
            mean = (inputs / std).mean(dim=0)
            self.log_scale.copy_(-torch.log(std))
            self.shift.copy_(-mean)
            self.initialized.fill_(True)


class LULinear(_NflowsLULinear):
    """``nflows`` LULinear (``W = L U``, unit-diagonal ``L``), identity-initialised.

    Forward: ``y = L U x + bias`` on ``(M, D)`` rows; log|det J| =
    ``sum(log(softplus(unconstrained_upper_diag) + 1e-3))``. With more rows than features
    (``M > D``) both directions form the ``D x D`` matrix (or its inverse, by triangular
    solves) once per call and apply a single product, which is cheaper than two products or
    two triangular solves with ``M`` right-hand sides; the results agree to round-off.
    """

    def __init__(self, features: int) -> None:
        super().__init__(features, using_cache=False, identity_init=True)
        # Flat positions of the strictly lower, strictly upper and diagonal entries, in the
        # row-major order of nflows' numpy index arrays; kept as (non-persistent) device
        # tensors because converting the numpy arrays on every call costs more than the
        # products for small batches.
        rows = torch.arange(features).unsqueeze(1)
        cols = torch.arange(features).unsqueeze(0)
        flat = (rows * features + cols).flatten()
        self.register_buffer("_lower_flat", flat[(rows > cols).flatten()], persistent=False)
        self.register_buffer("_upper_flat", flat[(rows < cols).flatten()], persistent=False)
        self.register_buffer("_diagonal_flat", flat[(rows == cols).flatten()], persistent=False)

    def _create_lower_upper(self) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.features * self.features
        lower = self.lower_entries.new_zeros(size).index_copy(
            0, self._lower_flat, self.lower_entries
        )
        lower = lower.index_fill(0, self._diagonal_flat, 1.0)
        upper = self.upper_entries.new_zeros(size).index_copy(
            0, self._upper_flat, self.upper_entries
        )
        upper = upper.index_copy(0, self._diagonal_flat, self.upper_diag)
        return lower.view(self.features, self.features), upper.view(self.features, self.features)

    def forward_no_cache(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lower, upper = self._create_lower_upper()
        if inputs.shape[0] > self.features:
            outputs = F.linear(inputs, lower @ upper, self.bias)
        else:
            outputs = F.linear(F.linear(inputs, upper), lower, self.bias)
        logabsdet = self.logabsdet() * inputs.new_ones(inputs.shape[0])
        return outputs, logabsdet

    def inverse_no_cache(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lower, upper = self._create_lower_upper()
        if inputs.shape[0] > self.features:
            inverse = self._inverse_from_factors(lower, upper)
            outputs = F.linear(inputs, inverse, -(inverse @ self.bias))
        else:
            outputs = (inputs - self.bias).t()
            outputs = torch.linalg.solve_triangular(
                lower, outputs, upper=False, unitriangular=True
            )
            outputs = torch.linalg.solve_triangular(upper, outputs, upper=True).t()
        logabsdet = -self.logabsdet() * inputs.new_ones(inputs.shape[0])
        return outputs, logabsdet

    @staticmethod
    def _inverse_from_factors(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """``(L U)^-1 = U^-1 L^-1`` by two triangular solves against the identity."""
        identity = torch.eye(lower.shape[0], dtype=lower.dtype, device=lower.device)
        lower_inverse = torch.linalg.solve_triangular(
            lower, identity, upper=False, unitriangular=True
        )
        return torch.linalg.solve_triangular(upper, lower_inverse, upper=True)

    def weight_inverse(self) -> torch.Tensor:
        return self._inverse_from_factors(*self._create_lower_upper())


class AdditiveCoupling(_NflowsAdditiveCoupling):
    """``nflows`` additive coupling: ``x_tr + net(x_id, context)``; log|det J| = 0.

    ``mask[i] > 0`` marks the transformed features (see :func:`coupling_mask`).
    """

    def _coupling_transform_forward(
        self, inputs: torch.Tensor, transform_params: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs + transform_params, inputs.new_zeros(inputs.shape[0])

    def _coupling_transform_inverse(
        self, inputs: torch.Tensor, transform_params: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs - transform_params, inputs.new_zeros(inputs.shape[0])


class ResidualBlock(_NflowsResidualBlock):
    """``BN → ReLU → Linear → BN → ReLU → Dropout → Linear`` plus the skip, on ``(M, H)``.

    The last linear layer starts at U(±1e-3) (stock ``nflows``); BatchNorm eps is
    :data:`BATCH_NORM_EPS`; there is no context input.
    """

    def __init__(
        self, features: int, dropout_probability: float = 0.0, use_batch_norm: bool = False
    ) -> None:
        super().__init__(
            features,
            context_features=None,
            dropout_probability=dropout_probability,
            use_batch_norm=use_batch_norm,
        )
        if use_batch_norm:
            for batch_norm in self.batch_norm_layers:
                batch_norm.eps = BATCH_NORM_EPS

    def _normalise(self, index: int, inputs: torch.Tensor) -> torch.Tensor:
        batch_norm = self.batch_norm_layers[index]
        if self.training or not batch_norm.track_running_stats:
            return batch_norm(inputs)
        # Eval mode is a per-feature affine map; one fused multiply-add is about three
        # times faster on CPU than the batch-norm kernel for (M, H) inputs.
        scale = batch_norm.weight * torch.rsqrt(batch_norm.running_var + batch_norm.eps)
        shift = batch_norm.bias - batch_norm.running_mean * scale
        return torch.addcmul(shift, inputs, scale)

    def forward(self, inputs: torch.Tensor, context: None = None) -> torch.Tensor:
        # In-place ReLU and skip-add are safe for autograd here (neither the normalisation
        # nor a linear layer saves its output) and save two passes over (M, H) per block.
        if self.use_batch_norm:
            temps = self._normalise(0, inputs).relu_()
        else:
            temps = F.relu(inputs)
        temps = self.linear_layers[0](temps)
        if self.use_batch_norm:
            temps = self._normalise(1, temps)
        temps = self.dropout(temps.relu_())
        return self.linear_layers[1](temps).add_(inputs)


class ResidualNet(nn.Module):
    """The coupling net: ``initial_layer``, residual ``blocks``, ``final_layer``.

    ``initial_layer`` is ``Linear(in + C → H)`` over ``[inputs, context]``; the blocks see no
    context. Default ``nn.Linear`` initialisation except the final layer, which is
    U(±:data:`FINAL_LAYER_INIT_SCALE`/√H) for weight and bias.

    *Arguments*
        in_features: size of the passed-through half ``D_id``.
        out_features: size of the transformed half ``D_tr``.
        hidden_features: ``H``.
        context_features: ``C``; 0 for an unconditional net.
        num_blocks: number of residual blocks.
        dropout_probability: dropout inside each block.
        use_batch_norm: BatchNorm inside each block.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int,
        context_features: int = 0,
        num_blocks: int = 2,
        dropout_probability: float = 0.0,
        use_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.context_features = context_features
        self.initial_layer = nn.Linear(in_features + context_features, hidden_features)
        self.blocks = nn.ModuleList(
            [
                ResidualBlock(hidden_features, dropout_probability, use_batch_norm)
                for _ in range(num_blocks)
            ]
        )
        self.final_layer = nn.Linear(hidden_features, out_features)
        bound = FINAL_LAYER_INIT_SCALE / math.sqrt(hidden_features)
        nn.init.uniform_(self.final_layer.weight, -bound, bound)
        nn.init.uniform_(self.final_layer.bias, -bound, bound)

    def project_context(self, context: torch.Tensor) -> torch.Tensor:
        """Context half of the initial layer, bias included: ``(B, C) -> (B, H)``."""
        weight = self.initial_layer.weight[:, self.in_features :]
        return F.linear(context, weight, self.initial_layer.bias)

    def forward(
        self, inputs: torch.Tensor, context: torch.Tensor | FlowContext | None = None
    ) -> torch.Tensor:
        """Shift for the transformed half.

        In eval mode the rows are independent, and large batches run in chunks of
        :data:`EVAL_CHUNK_ELEMENTS` hidden activations: each chunk's activations stay in
        cache and reuse the allocator's blocks, where whole-batch activations of tens of MB
        are freshly page-faulted by every operation (about 10 % of the time at 4096 rows).

        *Arguments*
            inputs: ``(M, D_id)`` passed-through features; with a :class:`FlowContext` of
                ``B`` rows, ``M = B * N`` rows ordered context-major (row ``b * N + n``).
            context: ``(M, C)`` one context row per input row, a :class:`FlowContext`, or
                ``None`` for an unconditional net.

        *Returns*
            ``(M, D_tr)``.
        """
        projection = context.projection(self) if isinstance(context, FlowContext) else None
        rows = context if projection is None else None
        chunk = max(1, EVAL_CHUNK_ELEMENTS // self.hidden_features)
        if self.training or inputs.shape[0] <= chunk:
            return self._run(inputs, rows, projection)
        return torch.cat(
            [self._run(*piece) for piece in _chunks(inputs, rows, projection, chunk)]
        )

    def _run(
        self,
        inputs: torch.Tensor,
        context: torch.Tensor | None,
        projection: torch.Tensor | None,
    ) -> torch.Tensor:
        """The net on ``M`` rows given per-row context, per-context projections, or neither."""
        if projection is not None:
            weight = self.initial_layer.weight[:, : self.in_features]
            if projection.shape[0] == 1:
                temps = F.linear(inputs, weight, projection[0])
            else:
                temps = F.linear(inputs, weight)
                temps.view(projection.shape[0], -1, self.hidden_features).add_(
                    projection.unsqueeze(1)
                )
        elif context is None:
            temps = self.initial_layer(inputs)
        else:
            temps = _JoinedLinear.apply(
                inputs, context, self.initial_layer.weight, self.initial_layer.bias
            )
        for block in self.blocks:
            temps = block(temps)
        return self.final_layer(temps)


class _JoinedLinear(torch.autograd.Function):
    """``Linear(cat(inputs, context))`` whose backward skips the context's gradient.

    Plain autograd differentiates the concatenated input as a whole, so it computes the
    ``(M, C)`` context gradient even when the context does not require grad (frozen image
    features, fitting) and then drops it: about 10 % of a training step's FLOPs at the
    default size. Here each part is computed only when needed. The backward is made of
    differentiable operations, so higher-order gradients still work.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        inputs: torch.Tensor,
        context: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(inputs, context, weight)
        return F.linear(torch.cat((inputs, context), dim=1), weight, bias)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        inputs, context, weight = ctx.saved_tensors
        split = inputs.shape[1]
        needs_inputs, needs_context, needs_weight, needs_bias = ctx.needs_input_grad
        # The concatenation is redone here (it is small) rather than saved, so that it stays
        # connected to the inputs for double backward.
        return (
            grad @ weight[:, :split] if needs_inputs else None,
            grad @ weight[:, split:] if needs_context else None,
            grad.t() @ torch.cat((inputs, context), dim=1) if needs_weight else None,
            grad.sum(dim=0) if needs_bias else None,
        )


def _chunks(
    inputs: torch.Tensor,
    context: torch.Tensor | None,
    projection: torch.Tensor | None,
    chunk: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
    """Consecutive row chunks of at most ``chunk`` rows, each with its context rows or the
    projections of the contexts it covers (whole contexts, or part of a single one)."""
    if projection is None:
        for start in range(0, inputs.shape[0], chunk):
            rows = slice(start, start + chunk)
            yield inputs[rows], None if context is None else context[rows], None
        return
    per_context = inputs.shape[0] // projection.shape[0]
    if per_context >= chunk:
        for index in range(projection.shape[0]):
            for start in range(0, per_context, chunk):
                stop = min(start + chunk, per_context)
                offset = index * per_context
                yield inputs[offset + start : offset + stop], None, projection[index : index + 1]
        return
    contexts = chunk // per_context
    for first in range(0, projection.shape[0], contexts):
        rows = slice(first * per_context, (first + contexts) * per_context)
        yield inputs[rows], None, projection[first : first + contexts]
