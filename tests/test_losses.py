"""Training losses against brute-force loops."""

from __future__ import annotations

import torch

from prohmr import losses
from prohmr.body.joints import PELVIS_INDEX


def test_keypoint_2d_loss_matches_loop():
    generator = torch.Generator().manual_seed(0)
    predicted = torch.randn(3, 2, 44, 2, generator=generator, dtype=torch.float64)
    target = torch.randn(3, 44, 3, generator=generator, dtype=torch.float64)
    target[..., 2] = torch.rand(3, 44, generator=generator, dtype=torch.float64)
    out = losses.keypoint_2d_loss(predicted, target[:, None])
    for b in range(3):
        for n in range(2):
            expected = sum(
                target[b, j, 2] * abs(predicted[b, n, j, c] - target[b, j, c])
                for j in range(44) for c in range(2)
            )
            torch.testing.assert_close(out[b, n], expected)


def test_keypoint_3d_loss_is_translation_invariant_and_centres_at_pelvis():
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(4, 44, 4, generator=generator, dtype=torch.float64)
    target[..., 3] = 1.0
    shifted = target[..., :3] + torch.tensor([0.3, -2.0, 5.0], dtype=torch.float64)
    torch.testing.assert_close(
        losses.keypoint_3d_loss(shifted, target), torch.zeros(4, dtype=torch.float64)
    )
    predicted = target[..., :3].clone()
    predicted[:, 0] += 1.0  # one joint off by 1 m in x, y and z
    torch.testing.assert_close(
        losses.keypoint_3d_loss(predicted, target), torch.full((4,), 3.0, dtype=torch.float64)
    )
    moved_pelvis = target[..., :3].clone()
    moved_pelvis[:, PELVIS_INDEX, 0] += 1.0  # every other joint is now 1 m off in x
    torch.testing.assert_close(
        losses.keypoint_3d_loss(moved_pelvis, target), torch.full((4,), 43.0, dtype=torch.float64)
    )


def test_parameter_loss_masks_items():
    predicted = torch.ones(3, 23, 3, 3)
    target = torch.zeros(3, 23, 3, 3)
    has_label = torch.tensor([1.0, 0.0, 1.0])
    torch.testing.assert_close(
        losses.parameter_loss(predicted, target, has_label, item_dims=3),
        torch.tensor([207.0, 0.0, 207.0]),
    )


def test_orthonormality_loss():
    rotation_6d = torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(24)
    assert losses.orthonormality_loss(rotation_6d).item() == 0.0
    scaled = 2 * rotation_6d  # A^T A = 4 I: diagonal error 3, off-diagonal 0
    torch.testing.assert_close(losses.orthonormality_loss(scaled), torch.tensor(9.0 / 2))
    parallel = torch.tensor([1.0, 0, 0, 1, 0, 0])  # A^T A = ones(2, 2): off-diagonal error 1
    torch.testing.assert_close(losses.orthonormality_loss(parallel), torch.tensor(0.5))


def test_adversarial_losses():
    fake = torch.tensor([[0.5, 1.0], [1.0, 2.0]])
    torch.testing.assert_close(losses.generator_adversarial_loss(fake), torch.tensor([0.25, 1.0]))
    real = torch.tensor([[1.0, 0.0]])
    expected = (0.25 + 1 + 1 + 4 + 0 + 1) / 2
    torch.testing.assert_close(losses.discriminator_loss(fake, real), torch.tensor(expected))
