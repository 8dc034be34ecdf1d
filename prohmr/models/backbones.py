"""ResNet backbones that turn an image crop into one feature vector (SPEC §3.1, §4.1).

The networks follow torchvision's ResNet (v1.5: the stride of a bottleneck sits on its 3x3
convolution) and use its parameter names (``conv1``, ``bn1``, ``layer{1..4}.{i}.conv{1..3}``,
``bn{1..3}``, ``downsample.{0,1}``), so the ``backbone.*`` part of an official ProHMR
checkpoint and torchvision's ImageNet files load without renaming. There is no classifier:
no ``fc`` and no ``avgpool`` module; the output is the mean over the spatial dimensions of
the last stage.

Variants needed elsewhere in the library:

- ``norm_layer="group"`` replaces every BatchNorm by ``GroupNorm(num_groups, C)`` (BOA's HMR
  uses 4 groups, since it adapts with batch size 1); the parameter names stay the same.
- ``layers=(3, 4, 9)`` with three stages gives MAED's truncated ResNet-50 (stride 16, 1024
  channels); :meth:`ResNet.forward_features` returns the feature map itself.

Weights are only ever read from a local file (:func:`load_imagenet_weights`); nothing here
touches the network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

__all__ = [
    "BACKBONE_NAMES",
    "RESNET_SPECS",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "create_backbone",
    "load_imagenet_weights",
]

logger = logging.getLogger(__name__)

BlockType = Literal["basic", "bottleneck"]
NormType = Literal["batch", "group"]

#: Block type and blocks per stage of each standard depth.
RESNET_SPECS: dict[str, tuple[BlockType, tuple[int, ...]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
#: Names accepted by :func:`create_backbone`.
BACKBONE_NAMES: tuple[str, ...] = tuple(RESNET_SPECS)

#: Width of the stem and of the first stage; each later stage doubles it.
_BASE_WIDTH = 64
#: Default number of GroupNorm groups (Wu & He, "Group Normalization").
_DEFAULT_NUM_GROUPS = 32
#: Prefix of the ImageNet classifier's keys in torchvision files, dropped on load.
_CLASSIFIER_PREFIX = "fc."


def _make_norm(norm_layer: NormType, num_groups: int, channels: int) -> nn.Module:
    if norm_layer == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(num_groups, channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34).

    *Arguments*
        in_channels: channels of the input map.
        planes: channels of both convolutions (the output has ``planes * expansion``).
        stride: stride of the first convolution.
        downsample: module applied to the input of the skip path, or None for identity.
        norm_layer, num_groups: normalisation, see :class:`ResNet`.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: NormType = "batch",
        num_groups: int = _DEFAULT_NUM_GROUPS,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _make_norm(norm_layer, num_groups, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = _make_norm(norm_layer, num_groups, planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @property
    def last_norm(self) -> nn.Module:
        """The normalisation closing the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand, with a residual connection (ResNet-50+).

    *Arguments*
        in_channels: channels of the input map.
        planes: channels of the inner convolutions (the output has ``planes * 4``).
        stride: stride of the 3x3 convolution (torchvision's "v1.5" placement).
        downsample: module applied to the input of the skip path, or None for identity.
        norm_layer, num_groups: normalisation, see :class:`ResNet`.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: NormType = "batch",
        num_groups: int = _DEFAULT_NUM_GROUPS,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = _make_norm(norm_layer, num_groups, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = _make_norm(norm_layer, num_groups, planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = _make_norm(norm_layer, num_groups, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @property
    def last_norm(self) -> nn.Module:
        """The normalisation closing the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


class ResNet(nn.Module):
    """ResNet feature extractor without classifier.

    Stem ``conv1`` (7x7, stride 2) → ``bn1`` → ReLU → 3x3 max-pool (stride 2), then one stage
    per entry of ``layers`` (``layer1`` … ``layer4``); every stage after the first halves the
    resolution and doubles the width. Convolutions are initialised with Kaiming-normal
    (fan-out, ReLU gain), normalisation layers with weight 1 and bias 0, as torchvision does.

    *Arguments*
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50/101/152).
        layers: blocks per stage, 1 to 4 entries, e.g. ``(3, 4, 6, 3)`` or MAED's ``(3, 4, 9)``.
        num_stages: keep only the first ``num_stages`` entries of ``layers``; default: all.
        norm_layer: ``"batch"`` (BatchNorm2d) or ``"group"`` (GroupNorm).
        num_groups: groups of every GroupNorm (ignored for BatchNorm); must divide 64.
        zero_init_residual: start the last normalisation of each block at weight 0, so every
            block begins as the identity (off by default, like torchvision).

    *Attributes*
        out_features: channels of the output, 2048 for ResNet-50/101/152, 512 for 18/34.

    *Example*
        >>> net = ResNet("bottleneck", (3, 4, 9), norm_layer="group", num_groups=4).eval()
        >>> net.out_features
        1024
        >>> net.forward_features(torch.zeros(1, 3, 64, 32)).shape
        torch.Size([1, 1024, 4, 2])
    """

    def __init__(
        self,
        block: BlockType,
        layers: Sequence[int],
        num_stages: int | None = None,
        norm_layer: NormType = "batch",
        num_groups: int = _DEFAULT_NUM_GROUPS,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}, got {block!r}")
        if norm_layer not in ("batch", "group"):
            raise ValueError(f"norm_layer must be 'batch' or 'group', got {norm_layer!r}")
        layers = tuple(int(n) for n in layers)
        if num_stages is None:
            num_stages = len(layers)
        if not 1 <= num_stages <= min(4, len(layers)):
            raise ValueError(
                f"num_stages must be between 1 and min(4, len(layers)) = "
                f"{min(4, len(layers))}, got {num_stages} (layers={layers})"
            )
        layers = layers[:num_stages]
        if any(n < 1 for n in layers):
            raise ValueError(f"layers must all be >= 1, got {layers}")
        if norm_layer == "group" and (num_groups < 1 or _BASE_WIDTH % num_groups != 0):
            raise ValueError(
                f"num_groups must be a positive divisor of {_BASE_WIDTH}, got {num_groups}"
            )

        block_cls = _BLOCKS[block]
        self.block = block
        self.blocks_per_stage = layers
        self.norm_layer = norm_layer
        self.num_groups = num_groups

        self.conv1 = nn.Conv2d(3, _BASE_WIDTH, 7, stride=2, padding=3, bias=False)
        self.bn1 = _make_norm(norm_layer, num_groups, _BASE_WIDTH)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        in_channels = _BASE_WIDTH
        for index, num_blocks in enumerate(layers):
            planes = _BASE_WIDTH * 2**index
            stride = 1 if index == 0 else 2
            out_channels = planes * block_cls.expansion
            downsample = None
            if stride != 1 or in_channels != out_channels:
                downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    _make_norm(norm_layer, num_groups, out_channels),
                )
            blocks = [
                block_cls(in_channels, planes, stride, downsample, norm_layer, num_groups)
            ]
            blocks += [
                block_cls(out_channels, planes, 1, None, norm_layer, num_groups)
                for _ in range(1, num_blocks)
            ]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
            in_channels = out_channels
        self.out_features: int = in_channels

        self._initialize(zero_init_residual)

    def _initialize(self, zero_init_residual: bool) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(module.last_norm.weight)

    @property
    def num_stages(self) -> int:
        """Number of residual stages (``layer1`` … ``layer{num_stages}``)."""
        return len(self.blocks_per_stage)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Feature map of the last stage.

        *Arguments*
            images: ``(..., 3, H, W)`` normalised image crops.

        *Returns*
            ``(..., out_features, h, w)`` with ``h ≈ H / 2**(num_stages + 1)`` (each stride-2
            step rounds up).
        """
        if images.ndim < 4 or images.shape[-3] != 3:
            raise ValueError(
                f"images must have shape (B, 3, H, W) (any leading dims), got {tuple(images.shape)}"
            )
        if not images.is_floating_point():
            raise ValueError(f"images must be a floating-point tensor, got {images.dtype}")
        batch_shape = images.shape[:-3]
        x = images.reshape(-1, *images.shape[-3:])
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        return x.reshape(*batch_shape, *x.shape[1:])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Global mean of the last feature map.

        *Arguments*
            images: ``(..., 3, H, W)`` normalised image crops.

        *Returns*
            ``(..., out_features)``.
        """
        return self.forward_features(images).mean(dim=(-2, -1))


def load_imagenet_weights(backbone: ResNet, path: str | Path) -> tuple[list[str], list[str]]:
    """Load a torchvision-format ResNet state dict from a local file into ``backbone``.

    The classifier (``fc.*``) is dropped. Keys the file lacks or has in excess are logged by
    name as a warning and returned (e.g. BatchNorm running statistics are "unexpected" for a
    GroupNorm backbone); a key present on both sides with another shape is an error. The
    file is read with ``torch.load(weights_only=True)``, so it cannot run code.

    *Arguments*
        backbone: the network to fill in place.
        path: a ``.pth`` file holding a flat ``{name: tensor}`` dict.

    *Returns*
        ``(missing_keys, unexpected_keys)``, the named tuple ``load_state_dict`` returns.

    *Raises*
        FileNotFoundError: ``path`` does not exist. ValueError: the file is not a state dict
        of this architecture (no common key, or a shape mismatch).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        raise ValueError(f"{path} does not hold a flat state dict of tensors")
    state = {k: v for k, v in state.items() if not k.startswith(_CLASSIFIER_PREFIX)}
    own = backbone.state_dict()
    if not own.keys() & state.keys():
        raise ValueError(
            f"no key of {path} matches the backbone; expected torchvision ResNet names "
            f"such as 'conv1.weight', got e.g. {sorted(state)[:3]}"
        )
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if mismatched:
        raise ValueError(
            f"{path} does not fit this backbone (wrong depth?); shape mismatches: "
            + "; ".join(mismatched[:5])
            + (f" and {len(mismatched) - 5} more" if len(mismatched) > 5 else "")
        )
    result = backbone.load_state_dict(state, strict=False)
    if result.missing_keys:
        logger.warning("keys missing from %s: %s", path, ", ".join(result.missing_keys))
    if result.unexpected_keys:
        logger.warning("unexpected keys in %s: %s", path, ", ".join(result.unexpected_keys))
    return result


def create_backbone(
    name: str, pretrained_path: str | Path | None = None, **kwargs: object
) -> ResNet:
    """Build a ResNet by name, optionally with ImageNet weights from a local file.

    *Arguments*
        name: one of :data:`BACKBONE_NAMES` (``"resnet18"`` … ``"resnet152"``).
        pretrained_path: torchvision-format weights file (see :func:`load_imagenet_weights`),
            or None for a random initialisation.
        kwargs: passed to :class:`ResNet` and override the named depth's defaults, e.g.
            ``layers=(3, 4, 9), num_stages=3, norm_layer="group", num_groups=4``.

    *Returns*
        The :class:`ResNet`; its ``out_features`` gives the feature size.

    *Example*
        >>> net = create_backbone("resnet18").eval()
        >>> net.out_features, net(torch.zeros(2, 3, 32, 32)).shape
        (512, torch.Size([2, 512]))
    """
    if name not in RESNET_SPECS:
        raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(BACKBONE_NAMES)}")
    block, layers = RESNET_SPECS[name]
    options: dict[str, object] = {"block": block, "layers": layers}
    options.update(kwargs)
    backbone = ResNet(**options)  # type: ignore[arg-type]
    if pretrained_path is not None:
        load_imagenet_weights(backbone, pretrained_path)
    return backbone
