"""Configuration of the ProHMR image model (SPEC §3, §4.1).

:class:`ProHMRConfig` holds everything needed to rebuild a :class:`~prohmr.models.ProHMR`
with the same architecture: backbone, flow and head sizes, the crop camera and where the body
model and the mean parameters come from. Its defaults are the original ProHMR configuration.
It converts to and from plain dicts and YAML, which is how checkpoints and command-line
configs store it. Training settings (losses, optimiser) do not belong here.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import yaml

from prohmr.constants import FOCAL_LENGTH, IMAGE_SIZE
from prohmr.models.backbones import BACKBONE_NAMES

__all__ = ["ProHMRConfig"]

PathLike = Union[str, os.PathLike]


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"ProHMRConfig: `{name}` must be an integer >= {minimum}, got {value!r}")


def _check_optional_path(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"ProHMRConfig: `{name}` must be a string path or None, got {value!r}")


@dataclass(frozen=True)
class ProHMRConfig:
    """Architecture of a :class:`~prohmr.models.ProHMR` model; defaults = original ProHMR.

    The flow always models ``POSE_6D_DIM`` = 144 features (24 rotations in 6D) and is
    conditioned on the backbone's pooled features (2048 for ResNet-50, 512 for ResNet-18/34),
    so neither size is a field.

    *Fields*
        backbone: one of :data:`prohmr.models.BACKBONE_NAMES` (``"resnet50"``).
        backbone_num_stages: keep only the first residual stages of the backbone (1–4;
            None = all 4). Three stages of ResNet-18 give 256 features with a quarter of
            its weights: the size of the shipped CPU model.
        backbone_weights_path: optional torchvision-format ImageNet weights file, read at
            construction (training starts from it); None for a random initialisation. Never
            downloaded. Ignored when a checkpoint is loaded, since it holds the weights.
        flow_hidden_features: width of the coupling nets (1024).
        flow_num_layers: ActNorm → LULinear → coupling layers (4).
        flow_num_blocks_per_layer: residual blocks per coupling net (2).
        flow_dropout_probability: dropout inside the residual blocks (0.5).
        flow_batch_norm: BatchNorm inside the residual blocks (True).
        head_hidden_features: hidden width of the betas/camera head (1024).
        focal_length: focal length in crop pixels of the virtual camera (5000).
        image_size: side of the square crop in pixels that the camera refers to (224).
        body_model_path: SMPL folder or file; None = ``$PROHMR_SMPL_DIR`` or the procedural
            default (see :func:`prohmr.body.model.create_body_model`).
        mean_params_path: ``smpl_mean_params.npz`` (or its folder); None = next to the body
            model (see :func:`prohmr.body.model.load_mean_params`).

    *Example*
        >>> config = ProHMRConfig(backbone="resnet18", flow_hidden_features=64)
        >>> ProHMRConfig.from_dict(config.to_dict()) == config
        True
        >>> ProHMRConfig.from_yaml(config.to_yaml()) == config
        True
    """

    backbone: str = "resnet50"
    backbone_num_stages: Optional[int] = None
    backbone_weights_path: Optional[str] = None
    flow_hidden_features: int = 1024
    flow_num_layers: int = 4
    flow_num_blocks_per_layer: int = 2
    flow_dropout_probability: float = 0.5
    flow_batch_norm: bool = True
    head_hidden_features: int = 1024
    focal_length: float = FOCAL_LENGTH
    image_size: int = IMAGE_SIZE
    body_model_path: Optional[str] = None
    mean_params_path: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("backbone_weights_path", "body_model_path", "mean_params_path"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
            _check_optional_path(getattr(self, name), name)
        if self.backbone not in BACKBONE_NAMES:
            raise ValueError(
                f"ProHMRConfig: unknown `backbone` {self.backbone!r}; valid names: "
                f"{', '.join(BACKBONE_NAMES)}"
            )
        if self.backbone_num_stages is not None:
            _check_int(self.backbone_num_stages, "backbone_num_stages", 1)
            if self.backbone_num_stages > 4:
                raise ValueError(
                    "ProHMRConfig: `backbone_num_stages` must be between 1 and 4, got "
                    f"{self.backbone_num_stages!r}"
                )
        _check_int(self.flow_hidden_features, "flow_hidden_features", 1)
        _check_int(self.flow_num_layers, "flow_num_layers", 1)
        _check_int(self.flow_num_blocks_per_layer, "flow_num_blocks_per_layer", 1)
        _check_int(self.head_hidden_features, "head_hidden_features", 1)
        _check_int(self.image_size, "image_size", 1)
        if not isinstance(self.flow_batch_norm, bool):
            raise ValueError(
                f"ProHMRConfig: `flow_batch_norm` must be a bool, got {self.flow_batch_norm!r}"
            )
        dropout = self.flow_dropout_probability
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
            0.0 <= dropout < 1.0
        ):
            raise ValueError(
                f"ProHMRConfig: `flow_dropout_probability` must be in [0, 1), got {dropout!r}"
            )
        focal = self.focal_length
        if isinstance(focal, bool) or not isinstance(focal, (int, float)) or not (
            math.isfinite(focal) and focal > 0
        ):
            raise ValueError(
                f"ProHMRConfig: `focal_length` must be a positive number, got {focal!r}"
            )
        object.__setattr__(self, "flow_dropout_probability", float(dropout))
        object.__setattr__(self, "focal_length", float(focal))

    def replace(self, **changes: Any) -> ProHMRConfig:
        """A copy with some fields changed (validated like the constructor)."""
        self._check_names(changes, "replace")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{field: value}`` dict (str, int, float, bool, None only)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @classmethod
    def _check_names(cls, names: Mapping[str, Any], function: str) -> None:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(
                f"ProHMRConfig.{function}: unknown field(s) {unknown}; valid fields: "
                f"{sorted(known)}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ProHMRConfig:
        """Build a config from a dict of fields; missing fields take their defaults.

        *Arguments*
            values: ``{field: value}``, e.g. from :meth:`to_dict` or a YAML file.

        *Returns*
            The config; ``ValueError`` names any unknown field or invalid value.
        """
        if not isinstance(values, Mapping):
            raise ValueError(
                f"ProHMRConfig.from_dict: `values` must be a mapping, got {type(values).__name__}"
            )
        cls._check_names(values, "from_dict")
        return cls(**dict(values))

    def to_yaml(self) -> str:
        """The config as YAML text (one ``field: value`` line per field)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> ProHMRConfig:
        """Parse YAML text written by :meth:`to_yaml` (or by hand, any subset of fields)."""
        values = yaml.safe_load(text)
        return cls.from_dict({} if values is None else values)

    def save_yaml(self, path: PathLike) -> Path:
        """Write :meth:`to_yaml` to ``path``; returns the path."""
        path = Path(path)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    @classmethod
    def load_yaml(cls, path: PathLike) -> ProHMRConfig:
        """Read a YAML config file; ``FileNotFoundError`` names a missing file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ProHMRConfig.load_yaml: config file not found: {path}")
        return cls.from_yaml(path.read_text(encoding="utf-8"))
