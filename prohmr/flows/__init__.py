"""ProHMR's conditional Glow on PyPI ``nflows``, its fast path and checkpoint compatibility.

- :class:`ConditionalGlow`: the flow (``log_prob``, ``sample``, ``mode``, ``distribution``).
- :class:`FlowSample`: ``samples (B, N, D)``, ``log_prob (B, N)``, ``z (B, N, D)``.
- :class:`FlowContext`: precomputed context projections (``flow.precompute_context``).
- :class:`GlowDistribution`: the ``torch.distributions`` facade (sample axes first).
- :func:`load_original_state_dict`: load the original ProHMR flow weights.
"""

from __future__ import annotations

from prohmr.flows.checkpoint import (
    ORIGINAL_EXTRA_BUFFER,
    ORIGINAL_FLOW_PREFIX,
    FlowLoadReport,
    convert_original_state_dict,
    load_original_state_dict,
)
from prohmr.flows.context import FlowContext
from prohmr.flows.distribution import GlowDistribution
from prohmr.flows.glow import ConditionalGlow, FlowSample
from prohmr.flows.transforms import (
    ACTNORM_MIN_STD,
    BATCH_NORM_EPS,
    FINAL_LAYER_INIT_SCALE,
    ActNorm,
    AdditiveCoupling,
    LULinear,
    ResidualBlock,
    ResidualNet,
    coupling_mask,
)

__all__ = [
    "ACTNORM_MIN_STD",
    "BATCH_NORM_EPS",
    "FINAL_LAYER_INIT_SCALE",
    "ORIGINAL_EXTRA_BUFFER",
    "ORIGINAL_FLOW_PREFIX",
    "ActNorm",
    "AdditiveCoupling",
    "ConditionalGlow",
    "FlowContext",
    "FlowLoadReport",
    "FlowSample",
    "GlowDistribution",
    "LULinear",
    "ResidualBlock",
    "ResidualNet",
    "convert_original_state_dict",
    "coupling_mask",
    "load_original_state_dict",
]
