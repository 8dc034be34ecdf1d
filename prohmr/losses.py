"""ProHMR's training losses (SPEC §4.2), each a small function returning per-item values.

Weights are not applied here: they live in the training config. Every function returns one
value per prediction (summed over joints / parameter dimensions) so that the caller can split
"mode" and "expectation" terms by sample index.
"""

from __future__ import annotations

import torch
from torch import Tensor

from prohmr.body.joints import PELVIS_INDEX

__all__ = [
    "keypoint_2d_loss",
    "keypoint_3d_loss",
    "parameter_loss",
    "orthonormality_loss",
    "generator_adversarial_loss",
    "discriminator_loss",
]


def keypoint_2d_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """Confidence-weighted L1 distance between 2D keypoints, summed per item.

    Arguments:
        predicted: ``(..., J, 2)`` keypoints (normalised crop coordinates).
        target: ``(..., J, 3)`` keypoints with confidence in the last column.

    Returns:
        ``(...)`` loss per item.

    Example:
        >>> keypoint_2d_loss(torch.zeros(1, 2, 2), torch.tensor([[[1.0, 0, 1], [1, 1, 0]]]))
        tensor([1.])
    """
    confidence = target[..., -1:]
    return (confidence * (predicted - target[..., :-1]).abs()).sum(dim=(-2, -1))


def keypoint_3d_loss(predicted: Tensor, target: Tensor, pelvis_index: int = PELVIS_INDEX) -> Tensor:
    """Confidence-weighted L1 distance of pelvis-centred 3D keypoints, summed per item.

    Both sets are centred at ``pelvis_index`` (joint 39 for ProHMR's 44 joints) first.

    Arguments:
        predicted: ``(..., J, 3)`` keypoints in metres.
        target: ``(..., J, 4)`` keypoints with confidence in the last column.
        pelvis_index: joint used as the root.

    Returns:
        ``(...)`` loss per item.
    """
    confidence = target[..., -1:]
    target_xyz = target[..., :-1] - target[..., pelvis_index : pelvis_index + 1, :-1]
    predicted = predicted - predicted[..., pelvis_index : pelvis_index + 1, :]
    return (confidence * (predicted - target_xyz).abs()).sum(dim=(-2, -1))


def parameter_loss(predicted: Tensor, target: Tensor, has_label: Tensor, item_dims: int) -> Tensor:
    """Squared error of SMPL parameters, summed per item and masked by label availability.

    Arguments:
        predicted: ``(..., *item_shape)`` parameters (rotation matrices or betas).
        target: same shape as ``predicted``.
        has_label: ``(...)`` 1 where the item has this label, else 0.
        item_dims: number of trailing dimensions that form one item (e.g. 3 for
            ``(23, 3, 3)`` rotation matrices, 1 for betas).

    Returns:
        ``(...)`` loss per item.
    """
    squared = (predicted - target) ** 2
    return has_label.to(squared.dtype) * squared.sum(dim=tuple(range(-item_dims, 0)))


def orthonormality_loss(pose_6d: Tensor) -> Tensor:
    """How far each raw 6D rotation is from two orthonormal columns, averaged per item.

    The raw 6D vector of ProHMR's column layout, ``(R00, R10, R20, R01, R11, R21)``, is read
    as a 3x2 matrix ``A``; the loss is ``mean((AᵀA − I₂)²)`` over all joints of the item.

    Arguments:
        pose_6d: ``(..., 6 * K)`` raw flow output for K joints.

    Returns:
        ``(...)`` loss per item.

    Example:
        >>> orthonormality_loss(torch.tensor([[1.0, 0, 0, 0, 1, 0]]))
        tensor([0.])
    """
    columns = pose_6d.reshape(*pose_6d.shape[:-1], -1, 2, 3).transpose(-1, -2)
    gram = columns.transpose(-1, -2) @ columns
    eye = torch.eye(2, dtype=gram.dtype, device=gram.device)
    return ((gram - eye) ** 2).flatten(-3).mean(dim=-1)


def generator_adversarial_loss(discriminator_output: Tensor) -> Tensor:
    """LSGAN generator term ``Σ (D − 1)²`` per item.

    Arguments:
        discriminator_output: ``(..., K)`` discriminator outputs for predicted bodies.

    Returns:
        ``(...)`` loss per item (sum over the K outputs).
    """
    return ((discriminator_output - 1.0) ** 2).sum(dim=-1)


def discriminator_loss(fake_output: Tensor, real_output: Tensor) -> Tensor:
    """LSGAN discriminator loss ``(Σ D_fake² + Σ (D_real − 1)²) / num_fake`` (SPEC §4.2).

    Arguments:
        fake_output: ``(M, K)`` outputs for detached predictions (M = B·N).
        real_output: ``(M', K)`` outputs for real mocap bodies.

    Returns:
        Scalar loss (unweighted).
    """
    fake = (fake_output**2).sum()
    real = ((real_output - 1.0) ** 2).sum()
    return (fake + real) / fake_output.shape[0]
