"""HMR's pose-and-shape discriminator, as used by ProHMR's adversarial loss (SPEC §4.3).

The 23 body rotations are read as a 9-channel 23x1 image (channel ``3 * r + c`` holds entry
``R[r, c]``) and pass through shared 1x1 convolutions. Three kinds of critics read the
result: one per joint, one for the betas, and one for the whole pose.
"""

from __future__ import annotations

import torch
from torch import nn

from prohmr.constants import NUM_BETAS, NUM_BODY_JOINTS

__all__ = ["Discriminator"]

#: Channels of the shared per-joint convolutions.
_JOINT_CHANNELS = 32
#: Widths of the betas critic's hidden layers.
_BETAS_HIDDEN = (10, 5)
#: Width of the all-joints critic's hidden layers.
_ALL_JOINTS_HIDDEN = 1024


class Discriminator(nn.Module):
    """Scores how plausible SMPL body poses and shapes are (LSGAN critic, real → 1).

    Architecture (every layer Xavier-uniform weights and zero biases):

    - ``D_conv1`` 1x1 conv 9→32, ReLU, ``D_conv2`` 1x1 conv 32→32, ReLU (shared by joints);
    - ``pose_out.{j}``: ``Linear(32→1)`` on joint j's 32 features, j = 0…22;
    - ``betas_fc1`` 10→10, ReLU, ``betas_fc2`` 10→5, ReLU, ``betas_out`` 5→1;
    - ``D_alljoints_fc1`` 736→1024, ReLU, ``D_alljoints_fc2`` 1024→1024, ReLU,
      ``D_alljoints_out`` 1024→1 on the flattened (channel-major, 32x23) joint features.

    The submodule names are those of the original ProHMR (and SPIN) ``Discriminator``, so the
    ``discriminator.*`` keys of an official checkpoint load strictly, without renaming.

    Output columns, in the original's order: 0…22 per-joint scores (SMPL body joints 1…23),
    23 the betas score, 24 the all-joints score.

    *Example*
        >>> disc = Discriminator()
        >>> pose = torch.eye(3).expand(4, 23, 3, 3)
        >>> disc(pose, torch.zeros(4, 10)).shape
        torch.Size([4, 25])
    """

    num_joints: int = NUM_BODY_JOINTS
    num_outputs: int = NUM_BODY_JOINTS + 2

    def __init__(self) -> None:
        super().__init__()
        joints, channels = NUM_BODY_JOINTS, _JOINT_CHANNELS
        self.D_conv1 = nn.Conv2d(9, channels, kernel_size=1)
        self.D_conv2 = nn.Conv2d(channels, channels, kernel_size=1)
        self.pose_out = nn.ModuleList(nn.Linear(channels, 1) for _ in range(joints))
        self.betas_fc1 = nn.Linear(NUM_BETAS, _BETAS_HIDDEN[0])
        self.betas_fc2 = nn.Linear(_BETAS_HIDDEN[0], _BETAS_HIDDEN[1])
        self.betas_out = nn.Linear(_BETAS_HIDDEN[1], 1)
        self.D_alljoints_fc1 = nn.Linear(channels * joints, _ALL_JOINTS_HIDDEN)
        self.D_alljoints_fc2 = nn.Linear(_ALL_JOINTS_HIDDEN, _ALL_JOINTS_HIDDEN)
        self.D_alljoints_out = nn.Linear(_ALL_JOINTS_HIDDEN, 1)
        self.relu = nn.ReLU()
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, body_pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """Score body poses and shapes.

        *Arguments*
            body_pose: ``(..., 23, 3, 3)`` rotation matrices of SMPL joints 1…23 (no global
                orientation).
            betas: ``(..., 10)`` shape coefficients, same leading dims.

        *Returns*
            ``(..., 25)``: 23 per-joint scores, the betas score, the all-joints score.
        """
        joints = NUM_BODY_JOINTS
        if body_pose.ndim < 3 or body_pose.shape[-3:] != (joints, 3, 3):
            raise ValueError(
                f"body_pose must have shape (B, {joints}, 3, 3), got {tuple(body_pose.shape)}"
            )
        if betas.shape != (*body_pose.shape[:-3], NUM_BETAS):
            raise ValueError(
                f"betas must have shape {(*body_pose.shape[:-3], NUM_BETAS)} to match "
                f"body_pose, got {tuple(betas.shape)}"
            )
        batch_shape = body_pose.shape[:-3]
        # (B, 23, 9) -> (B, 9, 23, 1): the 9 matrix entries are the channels.
        pose = body_pose.reshape(-1, joints, 9).transpose(1, 2).unsqueeze(-1)
        pose = self.relu(self.D_conv2(self.relu(self.D_conv1(pose))))
        joint_features = pose.squeeze(-1)  # (B, 32, 23)

        per_joint = torch.cat(
            [head(joint_features[:, :, j]) for j, head in enumerate(self.pose_out)], dim=1
        )
        shape = betas.reshape(-1, NUM_BETAS)
        shape_score = self.betas_out(
            self.relu(self.betas_fc2(self.relu(self.betas_fc1(shape))))
        )
        all_joints = joint_features.flatten(1)
        all_joints_score = self.D_alljoints_out(
            self.relu(self.D_alljoints_fc2(self.relu(self.D_alljoints_fc1(all_joints))))
        )
        scores = torch.cat([per_joint, shape_score, all_joints_score], dim=1)
        return scores.reshape(*batch_shape, self.num_outputs)
