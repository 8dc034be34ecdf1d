"""Networks: ResNet backbones, the FC head, HMR's discriminator (and the full models)."""

from prohmr.models.backbones import BACKBONE_NAMES, ResNet, create_backbone, load_imagenet_weights
from prohmr.models.discriminator import Discriminator
from prohmr.models.heads import FCHead, FCHeadOutput

__all__ = [
    "BACKBONE_NAMES",
    "Discriminator",
    "FCHead",
    "FCHeadOutput",
    "ResNet",
    "create_backbone",
    "load_imagenet_weights",
]
