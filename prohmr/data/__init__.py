"""Datasets and readers: the image ``.npz`` format, cropping and augmentation, mocap."""

from prohmr.data.augmentation import (
    AugmentationConfig,
    flip_keypoints,
    flip_smpl_pose,
    flip_smpl_rotation_matrices,
)
from prohmr.data.cropping import apply_affine, crop_image, crop_transform, invert_affine
from prohmr.data.image_dataset import ImageDataset, load_npz
from prohmr.data.mixture import MixedDataset
from prohmr.data.mocap_dataset import MocapDataset

__all__ = [
    "AugmentationConfig",
    "ImageDataset",
    "MixedDataset",
    "MocapDataset",
    "apply_affine",
    "crop_image",
    "crop_transform",
    "flip_keypoints",
    "flip_smpl_pose",
    "flip_smpl_rotation_matrices",
    "invert_affine",
    "load_npz",
]
