"""ProHMR's conditional Glow (SPEC §3) on PyPI ``nflows``.

``L`` layers of ``ActNorm → LULinear → AdditiveCoupling`` map a pose ``x`` (``D``
features) to ``z``, whose base distribution is a standard normal. Every layer has a
data-independent log-determinant, so ``log p(x | c) = log N(z; 0, I) + const``: the mode is
exactly ``z = 0`` and its log-probability is the same for every context.

Shapes: ``B`` contexts (images), ``N`` samples per context, ``D`` features, ``C`` context
features. Results are ``(B, N, ...)``; rows are flattened context-major for the transforms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import torch
from nflows.distributions import StandardNormal
from nflows.transforms import CompositeTransform
from torch import nn

from prohmr._utils import autocast_disabled
from prohmr.constants import POSE_6D_DIM
from prohmr.flows.context import FlowContext
from prohmr.flows.transforms import (
    ActNorm,
    AdditiveCoupling,
    LULinear,
    ResidualNet,
    coupling_mask,
)

if TYPE_CHECKING:
    from prohmr.flows.distribution import GlowDistribution

__all__ = ["ConditionalGlow", "FlowSample"]

#: The three ``nflows`` transforms of one layer, in order.
_TRANSFORMS_PER_LAYER = 3


@dataclass(frozen=True)
class FlowSample:
    """Samples of the flow with their log-probabilities and latents.

    Unpacks like the original's tuple: ``samples, log_prob, z = flow.sample(...)``.

    *Fields*
        samples: ``(B, N, D)`` the samples ``x``.
        log_prob: ``(B, N)`` ``log p(x | context)``.
        z: ``(B, N, D)`` the latents they came from.
    """

    samples: torch.Tensor
    log_prob: torch.Tensor
    z: torch.Tensor

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.samples, self.log_prob, self.z))


def _check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"ConditionalGlow: `{name}` must be an integer >= {minimum}, got {value!r}"
        )
    return value


class ConditionalGlow(nn.Module):
    """ProHMR's conditional Glow over ``D`` features given a ``C``-d context.

    Its state dict has the original's names (``_transform._transforms.{i}.*``; transforms
    ``3l``, ``3l+1``, ``3l+2`` are the ActNorm, LULinear and coupling of layer ``l``), so a
    model that keeps it as ``flow.flow`` loads ProHMR checkpoints (see
    :func:`prohmr.flows.load_original_state_dict`). Inputs are converted to the flow's
    dtype (float32 unless the module was converted), and autocast is disabled inside.

    Whenever a context row serves ``N > 1`` samples, or a :class:`FlowContext` is given, the
    context half of each coupling net's initial layer is computed once per context row and
    broadcast (the fast path; equal to the plain computation up to round-off).

    *Arguments*
        features: ``D`` (144 for SMPL poses in 6D, 48 for skeletons, any ``>= 2``).
        hidden_features: width ``H`` of the coupling nets.
        num_layers: number of ActNorm → LULinear → coupling layers.
        num_blocks_per_layer: residual blocks per coupling net.
        context_features: ``C``; ``0`` or ``None`` for an unconditional flow.
        dropout_probability: dropout inside the residual blocks.
        batch_norm: BatchNorm inside the residual blocks.

    *Example*
        >>> _ = torch.manual_seed(0)
        >>> flow = ConditionalGlow(features=6, hidden_features=16, num_layers=2,
        ...                        num_blocks_per_layer=1, context_features=4).eval()
        >>> context = torch.randn(3, 4)
        >>> out = flow.sample(5, context)
        >>> out.samples.shape, out.log_prob.shape
        (torch.Size([3, 5, 6]), torch.Size([3, 5]))
        >>> log_prob, z = flow.log_prob(out.samples, context)
        >>> torch.allclose(log_prob, out.log_prob, atol=1e-4), torch.allclose(z, out.z, atol=1e-5)
        (True, True)
    """

    def __init__(
        self,
        features: int = POSE_6D_DIM,
        hidden_features: int = 1024,
        num_layers: int = 4,
        num_blocks_per_layer: int = 2,
        context_features: int | None = 2048,
        dropout_probability: float = 0.5,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.features = _check_positive_int(features, "features", minimum=2)
        self.hidden_features = _check_positive_int(hidden_features, "hidden_features")
        self.num_layers = _check_positive_int(num_layers, "num_layers")
        self.num_blocks_per_layer = _check_positive_int(
            num_blocks_per_layer, "num_blocks_per_layer"
        )
        self.context_features = _check_positive_int(
            context_features or 0, "context_features", minimum=0
        )
        if not 0.0 <= dropout_probability < 1.0:
            raise ValueError(
                "ConditionalGlow: `dropout_probability` must be in [0, 1), "
                f"got {dropout_probability!r}"
            )
        self.dropout_probability = float(dropout_probability)
        self.batch_norm = bool(batch_norm)

        def create_net(in_features: int, out_features: int) -> ResidualNet:
            return ResidualNet(
                in_features,
                out_features,
                hidden_features=self.hidden_features,
                context_features=self.context_features,
                num_blocks=self.num_blocks_per_layer,
                dropout_probability=self.dropout_probability,
                use_batch_norm=self.batch_norm,
            )

        transforms: list[nn.Module] = []
        for layer in range(self.num_layers):
            transforms.append(ActNorm(self.features))
            transforms.append(LULinear(self.features))
            transforms.append(
                AdditiveCoupling(
                    mask=coupling_mask(self.features, layer), transform_net_create_fn=create_net
                )
            )
        self._transform = CompositeTransform(transforms)
        self._distribution = StandardNormal([self.features])

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, hidden_features={self.hidden_features}, "
            f"num_layers={self.num_layers}, num_blocks_per_layer={self.num_blocks_per_layer}, "
            f"context_features={self.context_features}, "
            f"dropout_probability={self.dropout_probability}, batch_norm={self.batch_norm}"
        )

    @property
    def is_conditional(self) -> bool:
        """Whether the flow takes a context."""
        return self.context_features > 0

    @property
    def initialized(self) -> bool:
        """Whether every ActNorm layer has been data-initialised (or loaded so)."""
        return all(
            bool(self._transform._transforms[index].initialized)
            for index in range(0, len(self._transform._transforms), _TRANSFORMS_PER_LAYER)
        )

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters (inputs are converted to it)."""
        return self._transform._transforms[0].log_scale.dtype

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self._transform._transforms[0].log_scale.device

    def coupling_nets(self) -> list[ResidualNet]:
        """The ``num_layers`` coupling nets, in layer order."""
        transforms = self._transform._transforms
        return [
            transforms[index].transform_net
            for index in range(_TRANSFORMS_PER_LAYER - 1, len(transforms), _TRANSFORMS_PER_LAYER)
        ]

    # ----------------------------------------------------------------------------- inputs
    def _as_input(self, value: object, name: str, function: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise ValueError(
                f"ConditionalGlow.{function}: `{name}` must be a floating torch.Tensor, "
                f"got {value.dtype if isinstance(value, torch.Tensor) else type(value).__name__}"
            )
        return value.to(dtype=self.dtype)

    def _check_context_tensor(self, context: object, function: str) -> torch.Tensor:
        context = self._as_input(context, "context", function)
        if context.ndim != 2 or context.shape[1] != self.context_features:
            raise ValueError(
                f"ConditionalGlow.{function}: `context` must have shape "
                f"(B, {self.context_features}), got {tuple(context.shape)}"
            )
        return context

    def _conditioner(
        self,
        context: torch.Tensor | FlowContext | None,
        batch_size: int,
        num_samples: int,
        function: str,
    ) -> torch.Tensor | FlowContext | None:
        """What the coupling nets receive for ``batch_size * num_samples`` rows."""
        if not self.is_conditional:
            if context is not None:
                raise ValueError(
                    f"ConditionalGlow.{function}: this flow is unconditional "
                    "(context_features=0); `context` must be None"
                )
            return None
        if context is None:
            raise ValueError(
                f"ConditionalGlow.{function}: `context` of shape (B, {self.context_features}) "
                "is required"
            )
        if isinstance(context, FlowContext):
            if context.batch_size != batch_size:
                raise ValueError(
                    f"ConditionalGlow.{function}: the FlowContext has {context.batch_size} "
                    f"rows but the inputs have B={batch_size}"
                )
            return context
        context = self._check_context_tensor(context, function)
        if context.shape[0] != batch_size:
            raise ValueError(
                f"ConditionalGlow.{function}: `context` has {context.shape[0]} rows but the "
                f"inputs have B={batch_size}"
            )
        if num_samples > 1:
            return self.precompute_context(context)
        return context

    # --------------------------------------------------------------------------- public API
    def precompute_context(self, context: torch.Tensor) -> FlowContext:
        """Context projections for every coupling net, to reuse across calls.

        Pass the result as ``context=`` to :meth:`log_prob`, :meth:`sample`, :meth:`mode`
        or :meth:`distribution` while the weights stay fixed (fitting, sampling in chunks).
        The flow's calls build one themselves whenever ``N > 1`` samples share a context.

        *Arguments*
            context: ``(B, C)`` context.

        *Returns*
            A :class:`FlowContext` of ``B`` rows.
        """
        if not self.is_conditional:
            raise ValueError(
                "ConditionalGlow.precompute_context: this flow is unconditional "
                "(context_features=0)"
            )
        device = context.device if isinstance(context, torch.Tensor) else self.device
        with autocast_disabled(device):
            context = self._check_context_tensor(context, "precompute_context")
            projections = {net: net.project_context(context) for net in self.coupling_nets()}
        return FlowContext.from_projections(context, projections)

    def log_prob(
        self, x: torch.Tensor, context: torch.Tensor | FlowContext | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``x`` given the context, and its latent ``z`` (pose → z).

        In training mode the first call initialises the ActNorm layers from ``x``.

        *Arguments*
            x: ``(B, D)`` or ``(B, N, D)`` points.
            context: ``(B, C)`` one row per ``B`` (shared by the ``N`` points), a
                :class:`FlowContext`, or ``None`` for an unconditional flow.

        *Returns*
            ``log_prob`` ``(B,)`` or ``(B, N)``, and ``z`` with the shape of ``x``.
        """
        with autocast_disabled(x.device if isinstance(x, torch.Tensor) else self.device):
            x = self._as_input(x, "x", "log_prob")
            if x.ndim not in (2, 3) or x.shape[-1] != self.features:
                raise ValueError(
                    f"ConditionalGlow.log_prob: `x` must have shape (B, {self.features}) or "
                    f"(B, N, {self.features}), got {tuple(x.shape)}"
                )
            batch_size = x.shape[0]
            num_samples = x.shape[1] if x.ndim == 3 else 1
            conditioner = self._conditioner(context, batch_size, num_samples, "log_prob")
            rows = x.reshape(batch_size * num_samples, self.features)
            z, logabsdet = self._transform(rows, context=conditioner)
            log_prob = self._distribution.log_prob(z) + logabsdet
        return log_prob.reshape(x.shape[:-1]), z.reshape(x.shape)

    def sample(
        self,
        num_samples: int | None = None,
        context: torch.Tensor | FlowContext | None = None,
        z: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> FlowSample:
        """Draw samples (z → pose), reparameterised: gradients reach ``z``, context, weights.

        *Arguments*
            num_samples: ``N`` per context; may be omitted when ``z`` is given.
            context: ``(B, C)``, a :class:`FlowContext`, or ``None`` (unconditional flow;
                ``B = 1`` unless ``z`` says otherwise).
            z: ``(B, N, D)`` latents to transform instead of drawing them (any ``N``).
            generator: random generator for the latents.

        *Returns*
            :class:`FlowSample` with ``samples (B, N, D)``, ``log_prob (B, N)``,
            ``z (B, N, D)``.
        """
        reference = context.context if isinstance(context, FlowContext) else context
        device = reference.device if isinstance(reference, torch.Tensor) else self.device
        with autocast_disabled(device):
            if z is not None:
                z = self._as_input(z, "z", "sample")
                if z.ndim != 3 or z.shape[-1] != self.features:
                    raise ValueError(
                        f"ConditionalGlow.sample: `z` must have shape (B, N, {self.features}), "
                        f"got {tuple(z.shape)}"
                    )
                if num_samples is not None and num_samples != z.shape[1]:
                    raise ValueError(
                        f"ConditionalGlow.sample: `num_samples`={num_samples} disagrees with "
                        f"`z` of shape {tuple(z.shape)}"
                    )
                batch_size, num_samples = z.shape[0], z.shape[1]
            else:
                num_samples = _check_positive_int(num_samples, "num_samples")
                if reference is None:
                    batch_size = 1
                elif isinstance(reference, torch.Tensor) and reference.ndim >= 1:
                    batch_size = reference.shape[0]
                else:
                    raise ValueError(
                        f"ConditionalGlow.sample: `context` must have shape "
                        f"(B, {self.context_features})"
                    )
                z = torch.randn(
                    (batch_size, num_samples, self.features),
                    generator=generator,
                    dtype=self.dtype,
                    device=device,
                )
            conditioner = self._conditioner(context, batch_size, num_samples, "sample")
            rows = z.reshape(batch_size * num_samples, self.features)
            samples, logabsdet = self._transform.inverse(rows, context=conditioner)
            log_prob = self._distribution.log_prob(rows) - logabsdet
        return FlowSample(
            samples.reshape(z.shape), log_prob.reshape(batch_size, num_samples), z
        )

    def mode(self, context: torch.Tensor | FlowContext | None = None) -> FlowSample:
        """The most likely point for each context: the sample at ``z = 0``.

        *Arguments*
            context: ``(B, C)``, a :class:`FlowContext`, or ``None`` (unconditional).

        *Returns*
            :class:`FlowSample` with ``N = 1``: ``samples (B, 1, D)``, ``log_prob (B, 1)``
            (the same value for every context), ``z`` zeros.
        """
        reference = context.context if isinstance(context, FlowContext) else context
        if reference is None:
            batch_size, device = 1, self.device
        elif isinstance(reference, torch.Tensor) and reference.ndim >= 1:
            batch_size, device = reference.shape[0], reference.device
        else:
            raise ValueError(
                f"ConditionalGlow.mode: `context` must have shape (B, {self.context_features})"
            )
        z = torch.zeros((batch_size, 1, self.features), dtype=self.dtype, device=device)
        return self.sample(context=context, z=z)

    def distribution(
        self, context: torch.Tensor | FlowContext | None = None
    ) -> GlowDistribution:
        """A ``torch.distributions.Distribution`` view of ``p(x | context)``.

        Its ``batch_shape`` is ``(B,)`` (``()`` when unconditional) and ``event_shape``
        ``(D,)``; like every ``torch.distributions`` object it puts the **sample axes
        first**: ``.sample((n,))`` is ``(n, B, D)``, whereas :meth:`sample` returns
        ``(B, N, D)``. Each call on it shares the context projections among its samples;
        pass a :class:`FlowContext` to share them across calls too.

        *Arguments*
            context: ``(B, C)``, a :class:`FlowContext`, or ``None`` (unconditional).

        *Returns*
            :class:`~prohmr.flows.distribution.GlowDistribution`.
        """
        from prohmr.flows.distribution import GlowDistribution

        if isinstance(context, FlowContext):
            batch_size = context.batch_size
        elif isinstance(context, torch.Tensor) and context.ndim >= 1:
            batch_size = context.shape[0]
        else:
            batch_size = 1
        self._conditioner(context, batch_size, 1, "distribution")
        return GlowDistribution(self, context)

    def forward(self, context: torch.Tensor | FlowContext | None = None) -> GlowDistribution:
        """Same as :meth:`distribution` (``dist = flow(context)``)."""
        return self.distribution(context)
