"""The file layout every model type of the library is saved in, written and read in one place.

A model of type ``X`` is a ``torch.save`` of ``{"format": "prohmr.X", "format_version",
"config": config.to_dict(), "state_dict": {...CPU tensors...}, "metadata": {...}}``; it loads
with ``torch.load(weights_only=True)``, so reading a file never runs code from it.
:func:`save_model_file` writes it, :func:`read_model_file` reads and checks it, and
:func:`check_state_keys` names every key of a state dict that does not fit a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

__all__ = ["LIGHTNING_VERSION_KEY", "check_state_keys", "read_model_file", "save_model_file"]

PathLike = Union[str, os.PathLike]

#: A key every Lightning checkpoint has (used to point users to the export step).
LIGHTNING_VERSION_KEY = "pytorch-lightning_version"


def check_state_keys(
    own: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], what: str, hint: str = ""
) -> None:
    """``ValueError`` naming every missing, unexpected and mis-shaped key of ``given``.

    *Arguments*
        own: the model's state dict.
        given: the state dict to load.
        what: the start of the message (e.g. ``"load_model: model.pt"``).
        hint: text after ``"does not match"`` (e.g. ``" the model (...)"``).
    """
    problems = [f"  missing: {key}" for key in own if key not in given]
    problems += [f"  unexpected: {key}" for key in given if key not in own]
    problems += [
        f"  shape mismatch: {key}: checkpoint {tuple(given[key].shape)} vs model "
        f"{tuple(own[key].shape)}"
        for key in own
        if key in given and tuple(given[key].shape) != tuple(own[key].shape)
    ]
    if problems:
        raise ValueError(f"{what} does not match{hint}:\n" + "\n".join(problems))


def save_model_file(
    model: nn.Module,
    config: Mapping[str, Any],
    path: PathLike,
    file_format: str,
    version: int,
    metadata: Optional[Mapping[str, Any]],
    function: str,
) -> Path:
    """Write ``model`` in the library's layout (module docstring); returns the path.

    ``metadata`` must survive a JSON round trip (plain values only, which is also what
    ``weights_only`` loading accepts); parent folders are created.
    """
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValueError(
            f"{function}: `metadata` must be a dict or None, got {type(metadata).__name__}"
        )
    try:
        stored = json.loads(json.dumps(dict(metadata or {})))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{function}: `metadata` must be JSON-serialisable: {error}") from error
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": file_format,
            "format_version": version,
            "config": dict(config),
            "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
            "metadata": stored,
        },
        path,
    )
    return path


def read_model_file(
    path: PathLike, file_format: str, version: int, function: str, export_hint: str = ""
) -> Mapping[str, Any]:
    """Read a file written by :func:`save_model_file` and check its format and version.

    *Arguments*
        path: the file.
        file_format, version: what it must be.
        function: named in the error messages.
        export_hint: how to convert a training checkpoint, added to the error when the file
            is a Lightning checkpoint.

    *Returns*
        The stored dict (its ``state_dict`` is a mapping).

    *Raises*
        FileNotFoundError: no such file. ValueError: unreadable, another format (a Lightning
        checkpoint gets ``export_hint``), another version, or no state dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{function}: file not found: {path}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        raise ValueError(
            f"{function}: {path} is not a readable weights-only file: {error}"
        ) from error
    found = content.get("format") if isinstance(content, Mapping) else None
    if found != file_format:
        hint = ""
        if isinstance(content, Mapping) and LIGHTNING_VERSION_KEY in content and export_hint:
            hint = f" (it looks like a Lightning checkpoint: {export_hint})"
        raise ValueError(
            f"{function}: {path} is not a {file_format!r} file (format {found!r}, expected "
            f"{file_format!r}){hint}"
        )
    if content.get("format_version") != version:
        raise ValueError(
            f"{function}: {path} has format version {content.get('format_version')!r}; this "
            f"library reads version {version}"
        )
    if not isinstance(content.get("state_dict"), Mapping):
        raise ValueError(f"{function}: {path} has no state_dict")
    return content
