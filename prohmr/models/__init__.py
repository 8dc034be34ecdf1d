"""Networks: ResNet backbones, the FC head, HMR's discriminator and the ProHMR image model."""

from prohmr.models.backbones import BACKBONE_NAMES, ResNet, create_backbone, load_imagenet_weights
from prohmr.models.config import ProHMRConfig
from prohmr.models.discriminator import Discriminator
from prohmr.models.heads import FCHead, FCHeadOutput
from prohmr.models.loading import (
    PRETRAINED_MODELS,
    ConvertedCheckpoint,
    UntrustedCheckpointError,
    convert_original_checkpoint,
    load_model,
    read_checkpoint,
    save_model,
)
from prohmr.models.pose_prior import (
    PosePrior,
    PosePriorConfig,
    PosePriorSample,
    load_pose_prior,
    save_pose_prior,
)
from prohmr.models.prohmr import ProHMR, ProHMROutput
from prohmr.models.proskeleton import (
    ProSkeleton,
    ProSkeletonConfig,
    ProSkeletonOutput,
    load_proskeleton,
    save_proskeleton,
)
from prohmr.models.smpl_flow import SMPLFlow, SMPLFlowOutput

__all__ = [
    "BACKBONE_NAMES",
    "ConvertedCheckpoint",
    "Discriminator",
    "FCHead",
    "FCHeadOutput",
    "PRETRAINED_MODELS",
    "PosePrior",
    "PosePriorConfig",
    "PosePriorSample",
    "ProHMR",
    "ProHMRConfig",
    "ProHMROutput",
    "ProSkeleton",
    "ProSkeletonConfig",
    "ProSkeletonOutput",
    "ResNet",
    "SMPLFlow",
    "SMPLFlowOutput",
    "UntrustedCheckpointError",
    "convert_original_checkpoint",
    "create_backbone",
    "load_imagenet_weights",
    "load_model",
    "load_pose_prior",
    "load_proskeleton",
    "read_checkpoint",
    "save_model",
    "save_pose_prior",
    "save_proskeleton",
]
