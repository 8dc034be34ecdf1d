"""The ``prohmr-train`` command (Lightning CLI).

The training LightningModules arrive with the training issue; until then the command only
describes itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prohmr-train`` console script."""
    parser = argparse.ArgumentParser(
        prog="prohmr-train",
        description="Train prohmr models with the Lightning CLI (models are added by the "
        "training issue; no sub-command is available yet).",
    )
    parser.parse_args(argv)
    parser.print_help()
    return 0
