"""Batched similarity Procrustes alignment (Umeyama), as used by PA-MPJPE.

For each sample, finds the scale ``s``, proper rotation ``R`` (``det R = +1``) and
translation ``t`` minimising ``sum_j |target_j - (s R source_j + t)|^2``. With points as
rows this reads ``aligned = s * source @ R^T + t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prohmr.geometry.rotations import _check_tensor

__all__ = ["PROCRUSTES_EPS", "SimilarityTransform", "procrustes_align"]

#: Lower bound on the source's total squared deviation from its centroid. A source whose
#: points all coincide gets scale 0 (every point lands on the target centroid), not NaN.
PROCRUSTES_EPS: float = 1e-12


@dataclass
class SimilarityTransform:
    """``x -> scale * x @ rotation^T + translation`` for row-vector points.

    Attributes:
        scale: ``(...)`` scale factors.
        rotation: ``(..., 3, 3)`` proper rotations.
        translation: ``(..., 3)`` translations.
    """

    scale: torch.Tensor
    rotation: torch.Tensor
    translation: torch.Tensor

    def apply(self, points: torch.Tensor) -> torch.Tensor:
        """Transform ``(..., J, 3)`` points; returns ``(..., J, 3)``."""
        rotated = points @ self.rotation.transpose(-1, -2)
        return self.scale[..., None, None] * rotated + self.translation[..., None, :]


def procrustes_align(
    source: torch.Tensor, target: torch.Tensor, return_transform: bool = False
) -> torch.Tensor | tuple[torch.Tensor, SimilarityTransform]:
    """Align ``source`` to ``target`` per sample with the best similarity transform.

    Umeyama's closed form: with centred points ``X``, ``Y`` and ``U S V^T = svd(Y^T X)``,
    ``R = U diag(1, 1, d) V^T`` where ``d = sign(det(U V^T))`` rules out reflections,
    ``scale = trace(diag(1, 1, d) S) / |X|^2`` and ``t = mean(target) - scale R mean(source)``.

    Arguments:
        source: ``(..., J, 3)`` points to move (e.g. predicted joints).
        target: ``(..., J, 3)`` reference points, same shape.
        return_transform: also return the :class:`SimilarityTransform`.

    Returns:
        ``aligned`` ``(..., J, 3)`` equal to ``scale * source @ R^T + t``; with
        ``return_transform=True`` the pair ``(aligned, SimilarityTransform)``.

    Example:
        >>> source = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        >>> aligned, transform = procrustes_align(source, 2.0 * source + 1.0, True)
        >>> round(transform.scale.item(), 4), transform.translation.round(decimals=4)
        (2.0, tensor([1., 1., 1.]))
        >>> bool(torch.allclose(aligned, 2.0 * source + 1.0, atol=1e-5))
        True
    """
    function = "procrustes_align"
    _check_tensor(source, "source", (3,), function)
    _check_tensor(target, "target", (3,), function)
    if source.ndim < 2 or source.shape[-2] == 0:
        raise ValueError(
            f"{function}: `source` must have shape (..., J, 3) with J >= 1, "
            f"got {tuple(source.shape)}"
        )
    if target.shape != source.shape:
        raise ValueError(
            f"{function}: `target` must have the shape of `source` {tuple(source.shape)}, "
            f"got {tuple(target.shape)}"
        )
    source_mean = source.mean(dim=-2)
    target_mean = target.mean(dim=-2)
    x = source - source_mean[..., None, :]
    y = target - target_mean[..., None, :]
    U, S, Vh = torch.linalg.svd(y.transpose(-1, -2) @ x)
    reflection = torch.linalg.det(U) * torch.linalg.det(Vh) < 0
    signs = torch.ones_like(S)
    signs[..., 2] = torch.where(reflection, -1.0, 1.0)
    rotation = (U * signs[..., None, :]) @ Vh
    source_variance = (x * x).sum(dim=(-2, -1)).clamp_min(PROCRUSTES_EPS)
    scale = (signs * S).sum(dim=-1) / source_variance
    rotated_mean = (rotation @ source_mean[..., None]).squeeze(-1)
    translation = target_mean - scale[..., None] * rotated_mean
    transform = SimilarityTransform(scale=scale, rotation=rotation, translation=translation)
    aligned = transform.apply(source)
    if return_transform:
        return aligned, transform
    return aligned
