"""Load the original ProHMR flow weights (SPEC §3.1).

An official ProHMR checkpoint keeps the Glow under ``flow.flow.`` with the same names as
:class:`~prohmr.flows.ConditionalGlow` (``_transform._transforms.{0..11}.*``), plus one
persistent scalar ``dummy_buffer`` per ``nflows`` transform of the original fork (13 keys:
the composite transform and its 12 children). Those carry no information and are dropped;
everything else must match by name and shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

__all__ = [
    "ORIGINAL_FLOW_PREFIX",
    "ORIGINAL_EXTRA_BUFFER",
    "FlowLoadReport",
    "convert_original_state_dict",
    "load_original_state_dict",
]

logger = logging.getLogger(__name__)

#: Where a full ProHMR checkpoint's ``state_dict`` keeps the Glow.
ORIGINAL_FLOW_PREFIX: str = "flow.flow."
#: Name of the information-free buffer that the original fork adds to every transform.
ORIGINAL_EXTRA_BUFFER: str = "dummy_buffer"


@dataclass(frozen=True)
class FlowLoadReport:
    """What :func:`load_original_state_dict` did, key by key (names without the prefix).

    *Fields*
        loaded_keys: keys copied into the flow.
        ignored_keys: ``dummy_buffer`` keys dropped.
        missing_keys: keys of the flow absent from the state dict.
        unexpected_keys: keys of the state dict that the flow does not have.
        mismatched_keys: keys present in both with different shapes, as
            ``"name: checkpoint (shape) vs flow (shape)"``.
    """

    loaded_keys: tuple[str, ...]
    ignored_keys: tuple[str, ...]
    missing_keys: tuple[str, ...]
    unexpected_keys: tuple[str, ...]
    mismatched_keys: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every key of the flow was loaded and nothing else was offered."""
        return not (self.missing_keys or self.unexpected_keys or self.mismatched_keys)

    def describe(self) -> str:
        """Human-readable list of every problem, one key per line."""
        lines = []
        for title, keys in (
            ("missing", self.missing_keys),
            ("unexpected", self.unexpected_keys),
            ("shape mismatch", self.mismatched_keys),
        ):
            lines.extend(f"  {title}: {key}" for key in keys)
        return "\n".join(lines)


def convert_original_state_dict(
    state_dict: Mapping[str, torch.Tensor], prefix: str = ""
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Keys under ``prefix`` with the prefix removed and ``dummy_buffer`` entries dropped.

    *Arguments*
        state_dict: an original-format state dict (the flow's own, or a whole model's).
        prefix: keep only keys starting with it, e.g. :data:`ORIGINAL_FLOW_PREFIX` for a
            full ProHMR checkpoint; ``""`` when ``state_dict`` is the flow's own.

    *Returns*
        The converted state dict and the dropped ``dummy_buffer`` keys (prefix removed).

    *Example*
        >>> converted, ignored = convert_original_state_dict(
        ...     {"flow.flow._transform.dummy_buffer": torch.tensor(0.0),
        ...      "flow.flow._transform._transforms.0.shift": torch.zeros(3),
        ...      "backbone.conv1.weight": torch.zeros(1)}, prefix="flow.flow.")
        >>> list(converted), ignored
        (['_transform._transforms.0.shift'], ('_transform.dummy_buffer',))
    """
    converted: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if name.rsplit(".", 1)[-1] == ORIGINAL_EXTRA_BUFFER:
            ignored.append(name)
        else:
            converted[name] = value
    return converted, tuple(ignored)


def load_original_state_dict(
    flow: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    prefix: str = "",
    strict: bool = True,
) -> FlowLoadReport:
    """Load an original-format flow state dict (with or without ``dummy_buffer`` keys).

    Values are copied into the flow's existing tensors (its dtype and device win).

    *Arguments*
        flow: a :class:`~prohmr.flows.ConditionalGlow` of the checkpoint's configuration.
        state_dict: the flow's state dict, or a whole model's with ``prefix``.
        prefix: see :func:`convert_original_state_dict`; :data:`ORIGINAL_FLOW_PREFIX` for
            an official ProHMR checkpoint's ``state_dict``.
        strict: raise ``ValueError`` naming every missing, unexpected or mismatched key
            (nothing is loaded then); otherwise load the matching keys and log the rest.

    *Returns*
        :class:`FlowLoadReport`.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            "load_original_state_dict: `state_dict` must be a mapping of names to tensors, "
            f"got {type(state_dict).__name__}"
        )
    converted, ignored = convert_original_state_dict(state_dict, prefix)
    own = flow.state_dict()
    missing = tuple(key for key in own if key not in converted)
    unexpected = tuple(key for key in converted if key not in own)
    mismatched = tuple(
        f"{key}: checkpoint {tuple(converted[key].shape)} vs flow {tuple(own[key].shape)}"
        for key in own
        if key in converted and tuple(converted[key].shape) != tuple(own[key].shape)
    )
    loadable = {
        key: value
        for key, value in converted.items()
        if key in own and tuple(value.shape) == tuple(own[key].shape)
    }
    report = FlowLoadReport(
        loaded_keys=tuple(loadable),
        ignored_keys=ignored,
        missing_keys=missing,
        unexpected_keys=unexpected,
        mismatched_keys=mismatched,
    )
    if not report.ok:
        message = (
            f"load_original_state_dict: the state dict (prefix {prefix!r}) does not match "
            f"the flow:\n{report.describe()}"
        )
        if strict:
            raise ValueError(message)
        logger.warning(message)
    flow.load_state_dict(loadable, strict=strict)
    return report
