"""Small helpers shared across sub-packages (lowest layer: imports only torch)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import torch

__all__ = ["DictLikeOutput", "autocast_disabled", "check_weight_fields", "single_thread"]


class DictLikeOutput:
    """Mixin letting output dataclasses also be read like dicts (``out["betas"]``, ``dict(out)``),
    like ``smplx``'s outputs."""

    def keys(self) -> list[str]:
        """Field names, in declaration order."""
        return [field.name for field in fields(self)]  # type: ignore[arg-type]

    def values(self) -> list[Any]:
        """Field values, in declaration order."""
        return [getattr(self, name) for name in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` pairs, in declaration order."""
        return [(name, getattr(self, name)) for name in self.keys()]

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` if there is no such field."""
        return getattr(self, key) if key in self.keys() else default

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())


def autocast_disabled(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """Leave any autocast region on ``device`` (code inside runs in its own dtype)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread, restoring the setting afterwards.

    For work made of many small tensor operations (rendering at small sizes, the demo): on a
    shared 2-core machine two threads spin against each other and were measured up to 30
    times slower, and on an idle one they save little.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_weight_fields(instance: Any) -> None:
    """Check that every field of a frozen dataclass of loss weights is a finite number >= 0,
    and store it as a float; ``ValueError`` names the field."""
    for field in fields(instance):
        value = getattr(instance, field.name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value >= 0.0
        ):
            raise ValueError(
                f"{type(instance).__name__}.{field.name} must be a finite number >= 0, "
                f"got {value!r}"
            )
        object.__setattr__(instance, field.name, float(value))
