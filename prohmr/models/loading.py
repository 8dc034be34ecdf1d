"""One entry point for the library's models: :func:`load_model`; plus saving and conversion.

:func:`load_model` takes the name of a model shipped inside the package
(:data:`PRETRAINED_MODELS`: ``"prohmr_synthetic"``, ``"pose_prior"``, ``"proskeleton"``; each
has a model card next to its weights in ``prohmr/pretrained/``) or reads, from a local file
(nothing is ever downloaded):

- an **original ProHMR checkpoint** (the official release or one trained with the original
  code; layout in SPEC §3.1), converted by :func:`convert_original_checkpoint`. Such files do
  not store the configuration: it comes from the caller, default :class:`ProHMRConfig` (the
  original one);
- a file written by :func:`save_model`: ``{"format", "format_version", "config",
  "state_dict"}``;
- a Lightning checkpoint of this library: the model's keys are prefixed ``model.``, the
  configuration is read from ``hyper_parameters["config"]`` when present;
- a file of another model type of this library (``format`` ``"prohmr.PosePrior"`` or
  ``"prohmr.ProSkeleton"``), handed to that type's loader
  (:func:`prohmr.models.pose_prior.load_pose_prior`,
  :func:`prohmr.models.proskeleton.load_proskeleton`).

Checkpoints are pickles, which can run code when loaded. They are read with
``torch.load(weights_only=True)`` and a minimal allow-list (:func:`read_checkpoint`);
anything else is refused with :class:`UntrustedCheckpointError` unless the caller passes
``trust_checkpoint=True`` for a file from a source they trust.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from prohmr.body.model import BodyModel
from prohmr.constants import NUM_BETAS
from prohmr.flows import ORIGINAL_EXTRA_BUFFER, ORIGINAL_FLOW_PREFIX
from prohmr.models.config import ProHMRConfig
from prohmr.models.discriminator import Discriminator
from prohmr.models.model_files import check_state_keys, save_model_file
from prohmr.models.prohmr import ProHMR

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "LIGHTNING_MODEL_PREFIX",
    "OTHER_MODEL_FORMATS",
    "PRETRAINED_DIR",
    "PRETRAINED_MODELS",
    "ConvertedCheckpoint",
    "UntrustedCheckpointError",
    "convert_original_checkpoint",
    "load_model",
    "read_checkpoint",
    "save_model",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: Folder of the weights shipped inside the package (with a model card ``<name>.md`` each).
PRETRAINED_DIR: Path = Path(__file__).resolve().parent.parent / "pretrained"
#: Shipped models by name (name -> weights file inside the package).
PRETRAINED_MODELS: dict[str, Path] = {
    name: PRETRAINED_DIR / f"{name}.pt" for name in ("prohmr_synthetic", "pose_prior", "proskeleton")
}
#: ``format`` of the files of the library's other model types -> (module, loader function).
OTHER_MODEL_FORMATS: dict[str, tuple[str, str]] = {
    "prohmr.PosePrior": ("prohmr.models.pose_prior", "load_pose_prior"),
    "prohmr.ProSkeleton": ("prohmr.models.proskeleton", "load_proskeleton"),
}
#: Value of the ``format`` entry of files written by :func:`save_model`.
CHECKPOINT_FORMAT: str = "prohmr.ProHMR"
#: Version of that layout; bumped if it ever changes incompatibly.
CHECKPOINT_FORMAT_VERSION: int = 1
#: Prefix of the model's keys in this library's Lightning checkpoints (``self.model``).
LIGHTNING_MODEL_PREFIX: str = "model."

# Key prefixes of an original ProHMR checkpoint's ``state_dict`` (SPEC §3.1).
_ORIGINAL_MODEL_PREFIXES: tuple[str, ...] = ("backbone.", ORIGINAL_FLOW_PREFIX, "flow.fc_head.")
_ORIGINAL_MODEL_KEYS: tuple[str, ...] = ("initialized",)
_ORIGINAL_DISCRIMINATOR_PREFIX = "discriminator."
# The original kept its SMPL layer in the LightningModule; released files omit it.
_ORIGINAL_BODY_MODEL_PREFIX = "smpl."


class UntrustedCheckpointError(ValueError):
    """A checkpoint needs arbitrary unpickling; load it only with ``trust_checkpoint=True``."""


class _LegacyCallbackKey:
    """Inert stand-in for a Lightning callback class.

    Lightning < 1.5 (the original ProHMR used 1.4) keyed ``checkpoint["callbacks"]`` by the
    callback's class. The class is only a dict key there, so a stand-in that does nothing
    lets such files load without importing, let alone running, Lightning code.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        del args, kwargs


#: Callback classes that old Lightning versions pickle as ``checkpoint["callbacks"]`` keys.
_LEGACY_CALLBACK_CLASSES: tuple[str, ...] = (
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
)


def _safe_globals() -> list[Any]:
    """The allow-list added to ``weights_only`` loading: this library's config dataclass
    and inert stand-ins for old Lightning callback keys; nothing that can run code."""
    allowed: list[Any] = [ProHMRConfig]
    allowed.extend((_LegacyCallbackKey, name) for name in _LEGACY_CALLBACK_CLASSES)
    return allowed


@dataclass(frozen=True)
class ConvertedCheckpoint:
    """An original ProHMR checkpoint split into this library's modules.

    *Fields*
        model_state_dict: for :class:`ProHMR` (``initialized``, ``backbone.*``,
            ``flow.flow.*``, ``flow.fc_head.*``).
        discriminator_state_dict: for :class:`~prohmr.models.Discriminator` (prefix removed;
            empty if the file has no discriminator).
        dropped_keys: keys that carry nothing this library needs: the flow's ``dummy_buffer``
            entries and the body model's ``smpl.*`` buffers.
    """

    model_state_dict: dict[str, torch.Tensor]
    discriminator_state_dict: dict[str, torch.Tensor]
    dropped_keys: tuple[str, ...]


def read_checkpoint(path: PathLike, trust_checkpoint: bool = False) -> Any:
    """Read a checkpoint file onto the CPU, safely unless told otherwise.

    By default ``torch.load(weights_only=True)``: tensors, containers and plain Python values,
    plus :class:`ProHMRConfig` and inert stand-ins for old Lightning callback classes.

    *Arguments*
        path: the file.
        trust_checkpoint: allow full unpickling (it can execute code from the file); only for
            files from a source you trust.

    *Returns*
        The unpickled object (usually a dict).

    *Raises*
        FileNotFoundError: no such file. UntrustedCheckpointError: the file needs globals
        outside the allow-list (named in the message). ValueError: not a readable
        checkpoint.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if trust_checkpoint:
        logger.info("reading %s with full unpickling (trust_checkpoint=True)", path)
        return torch.load(path, map_location="cpu", weights_only=False)
    with torch.serialization.safe_globals(_safe_globals()):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            failure: Exception = error
        except (RuntimeError, EOFError) as error:
            raise ValueError(f"{path} is not a readable PyTorch checkpoint: {error}") from error
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except (RuntimeError, ValueError, EOFError, pickle.UnpicklingError):
            unsafe = []
    if unsafe:
        raise UntrustedCheckpointError(
            f"refusing to unpickle {path}: it contains Python objects outside the safe "
            f"allow-list ({', '.join(sorted(unsafe))}), and unpickling them could run code "
            "from the file. If you trust its source, pass trust_checkpoint=True."
        ) from failure
    raise ValueError(
        f"{path} could not be read safely ({failure}). If it is a checkpoint from a source you "
        "trust, trust_checkpoint=True reads it with full unpickling."
    ) from failure


def _state_dict_of(checkpoint: Any, source: str) -> Mapping[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint, or the checkpoint if it is one itself."""
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in checkpoint.items()
    ):
        raise ValueError(
            f"{source}: expected a state dict of tensors (or a checkpoint with a "
            "'state_dict' entry)"
        )
    return checkpoint


def _load_model_strict(model: ProHMR, state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    hint = (
        " the model (is the configuration right? The backbone and flow sizes must be those "
        "it was trained with)"
    )
    check_state_keys(model.state_dict(), state_dict, what, hint)
    model.load_state_dict(state_dict, strict=True)


def convert_original_checkpoint(
    source: Union[PathLike, Mapping[str, Any]], trust_checkpoint: bool = False
) -> ConvertedCheckpoint:
    """Split an original ProHMR checkpoint into model and discriminator state dicts.

    Every key must be known (SPEC §3.1): ``initialized``, ``backbone.*``, ``flow.flow.*``,
    ``flow.fc_head.*`` go to the model; ``discriminator.*`` to the discriminator (checked
    strictly against :class:`~prohmr.models.Discriminator`); the flow's ``dummy_buffer``
    entries (13 in the original fork: the composite transform and its 12 transforms; any
    number is accepted) and ``smpl.*`` buffers are dropped. Whether the model part fits a
    configuration is checked when it is loaded (:func:`load_model`).

    *Arguments*
        source: a checkpoint file, a loaded checkpoint dict (with ``state_dict``), or the
            state dict itself.
        trust_checkpoint: see :func:`read_checkpoint`.

    *Returns*
        :class:`ConvertedCheckpoint`.

    *Raises*
        ValueError naming every unknown key, or every missing/unexpected/mis-shaped
        discriminator key; see also :func:`read_checkpoint`.

    *Example*
        >>> converted = convert_original_checkpoint({
        ...     "initialized": torch.tensor(True),
        ...     "flow.flow._transform.dummy_buffer": torch.tensor(0.0),
        ...     "flow.fc_head.init_cam": torch.zeros(1, 1, 3),
        ...     "smpl.shapedirs": torch.zeros(2, 3, 10)})
        >>> sorted(converted.model_state_dict)
        ['flow.fc_head.init_cam', 'initialized']
        >>> converted.dropped_keys
        ('flow.flow._transform.dummy_buffer', 'smpl.shapedirs')
    """
    if isinstance(source, Mapping):
        return _convert_original(_state_dict_of(source, "the checkpoint"), "the checkpoint")
    checkpoint = read_checkpoint(source, trust_checkpoint)
    return _convert_original(_state_dict_of(checkpoint, str(source)), str(source))


def _convert_original(
    state_dict: Mapping[str, torch.Tensor], name: str
) -> ConvertedCheckpoint:
    """:func:`convert_original_checkpoint` for a state dict; ``name`` is used in errors."""
    model: dict[str, torch.Tensor] = {}
    discriminator: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    unexpected: list[str] = []
    for key, value in state_dict.items():
        if key.startswith(ORIGINAL_FLOW_PREFIX) and key.rsplit(".", 1)[-1] == ORIGINAL_EXTRA_BUFFER:
            dropped.append(key)
        elif key.startswith(_ORIGINAL_BODY_MODEL_PREFIX):
            dropped.append(key)
        elif key in _ORIGINAL_MODEL_KEYS or key.startswith(_ORIGINAL_MODEL_PREFIXES):
            model[key] = value
        elif key.startswith(_ORIGINAL_DISCRIMINATOR_PREFIX):
            discriminator[key[len(_ORIGINAL_DISCRIMINATOR_PREFIX):]] = value
        else:
            unexpected.append(key)
    if unexpected:
        raise ValueError(
            f"{name} is not an original ProHMR checkpoint, or has keys this library does not "
            "know:\n" + "\n".join(f"  unexpected: {key}" for key in unexpected)
        )
    if not model:
        raise ValueError(f"{name} holds no ProHMR model weights (no backbone.* or flow.* keys)")
    if discriminator:
        # Built on the meta device: only names and shapes are needed, and the global random
        # state stays untouched.
        with torch.device("meta"):
            expected = Discriminator().state_dict()
        check_state_keys(
            expected, discriminator, f"the discriminator of {name}", " the Discriminator"
        )
    return ConvertedCheckpoint(model, discriminator, tuple(dropped))


def save_model(
    model: ProHMR, path: PathLike, metadata: Optional[Mapping[str, Any]] = None
) -> Path:
    """Save a model's configuration and weights for :func:`load_model`.

    The file holds ``{"format", "format_version", "config": config.to_dict(),
    "state_dict", "metadata"}`` (CPU tensors); it loads with ``weights_only=True`` and
    contains no body model data.

    *Arguments*
        model: the model.
        path: the file to write (parent folders are created).
        metadata: JSON-able facts to keep with the weights (training data, metrics, ...).

    *Returns*
        The path written.
    """
    if not isinstance(model, ProHMR):
        raise ValueError(f"save_model: `model` must be a ProHMR, got {type(model).__name__}")
    return save_model_file(
        model, model.config.to_dict(), path, CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION,
        metadata, "save_model",
    )


def _resolve_source(name_or_path: Optional[PathLike]) -> Path:
    available = ", ".join(sorted(PRETRAINED_MODELS))
    if name_or_path is None:
        raise ValueError(
            "load_model: no model name or checkpoint path given, and there is no default "
            f"pretrained model (available names: {available}). Pass the path of a checkpoint."
        )
    if isinstance(name_or_path, str) and name_or_path in PRETRAINED_MODELS:
        path = Path(PRETRAINED_MODELS[name_or_path]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"load_model: the weights of pretrained model {name_or_path!r} are not at {path} "
                "(is the package installed completely?)"
            )
        return path
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    looks_like_name = isinstance(name_or_path, str) and not path.suffix and len(path.parts) == 1
    if looks_like_name:
        raise ValueError(
            f"load_model: {name_or_path!r} is neither a known model name (available: "
            f"{available}) nor an existing checkpoint file"
        )
    raise FileNotFoundError(f"load_model: checkpoint file not found: {path}")


def _config_from(value: Any, source: str) -> Optional[ProHMRConfig]:
    if value is None or isinstance(value, ProHMRConfig):
        return value
    if isinstance(value, Mapping):
        return ProHMRConfig.from_dict(value)
    raise ValueError(f"{source}: the stored config is a {type(value).__name__}, not a dict")


def _model_state(
    checkpoint: Any, source: str
) -> tuple[Mapping[str, torch.Tensor], Optional[ProHMRConfig], str]:
    """The model's state dict, the stored config (if any) and the kind of file."""
    if isinstance(checkpoint, Mapping) and checkpoint.get("format") == CHECKPOINT_FORMAT:
        version = checkpoint.get("format_version")
        if version != CHECKPOINT_FORMAT_VERSION:
            raise ValueError(
                f"{source}: format version {version!r} is not supported (this library reads "
                f"version {CHECKPOINT_FORMAT_VERSION})"
            )
        return (
            _state_dict_of(checkpoint["state_dict"], source),
            _config_from(checkpoint.get("config"), source),
            "saved model",
        )
    state_dict = _state_dict_of(checkpoint, source)
    if any(key.startswith(LIGHTNING_MODEL_PREFIX) for key in state_dict):
        hyper_parameters = checkpoint.get("hyper_parameters")
        stored = (
            hyper_parameters.get("config") if isinstance(hyper_parameters, Mapping) else None
        )
        prefix = len(LIGHTNING_MODEL_PREFIX)
        model_state = {
            key[prefix:]: value
            for key, value in state_dict.items()
            if key.startswith(LIGHTNING_MODEL_PREFIX)
        }
        return model_state, _config_from(stored, source), "Lightning checkpoint"
    converted = _convert_original(state_dict, source)
    return converted.model_state_dict, None, "original ProHMR checkpoint"


def load_model(
    name_or_path: Optional[PathLike] = None,
    config: Optional[ProHMRConfig] = None,
    device: Optional[Union[str, torch.device]] = None,
    trust_checkpoint: bool = False,
    *,
    body_model: Optional[BodyModel] = None,
) -> Any:
    """Load a model, in eval mode: the library's single entry point.

    *Arguments*
        name_or_path: a name in :data:`PRETRAINED_MODELS`, or a local checkpoint file:
            original ProHMR, :func:`save_model` output, a Lightning checkpoint of this
            library, or a pose-prior / ProSkeleton file (see the module docstring).
        config: the architecture. Overrides a stored config (e.g. to point
            ``body_model_path`` at your SMPL files); required for original checkpoints
            unless they use the original configuration (the default).
            ``backbone_weights_path`` and the mean parameters are not read: the checkpoint
            holds those weights.
        device: where to put the model (default: CPU).
        trust_checkpoint: allow full unpickling, see :func:`read_checkpoint`.
        body_model: a ready body model, instead of building one from the config.

    *Returns*
        The :class:`ProHMR` model with the checkpoint's weights, in eval mode; for a
        pose-prior or ProSkeleton file, that type's model (``config`` and ``body_model``
        do not apply to them).

    *Raises*
        FileNotFoundError naming a missing file; ValueError for an unknown name, or a
        checkpoint whose keys do not match the model (every key named);
        UntrustedCheckpointError (a ValueError) for files that need ``trust_checkpoint``.
    """
    path = _resolve_source(name_or_path)
    if config is not None and not isinstance(config, ProHMRConfig):
        raise ValueError(
            f"load_model: `config` must be a ProHMRConfig, got {type(config).__name__}"
        )
    checkpoint = read_checkpoint(path, trust_checkpoint)
    if isinstance(checkpoint, Mapping) and checkpoint.get("format") in OTHER_MODEL_FORMATS:
        module_name, function = OTHER_MODEL_FORMATS[checkpoint["format"]]
        loader = getattr(importlib.import_module(module_name), function)
        return loader(path, device=device)
    state_dict, stored_config, kind = _model_state(checkpoint, str(path))
    config = config or stored_config or ProHMRConfig()
    # The checkpoint overwrites the backbone and the head's mean parameters, so neither the
    # ImageNet file nor the mean-params file is read.
    placeholder_means = {"shape": torch.zeros(NUM_BETAS), "cam": torch.zeros(3)}
    model = ProHMR(
        config.replace(backbone_weights_path=None),
        body_model=body_model,
        mean_params=placeholder_means,
    )
    _load_model_strict(model, state_dict, f"{kind} {path}")
    logger.info("loaded %s %s (%s backbone)", kind, path, config.backbone)
    if device is not None:
        model.to(device)
    return model.eval()
