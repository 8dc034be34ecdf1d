"""The body model's joints without its mesh: the inner loop of fitting.

Fitting evaluates the body hundreds of times but only needs its 44 joints. Each of them is
either an SMPL joint (from the kinematic chain), a mesh vertex (smplx's landmarks: nose,
eyes, ears, toes, heels) or a sparse combination of vertices (the 19-joint regressor uses a
few hundred of the 6890 vertices). :class:`BodyJoints` runs SMPL's linear blend skinning on
that vertex subset only, with the shape-dependent joint locations precomputed
(``J_regressor @ (v_template + shapedirs β)`` is linear in β). The results equal
:class:`~prohmr.body.model.BodyModel`'s ``joints`` and ``smpl_joints`` up to round-off, at a
fraction of the cost (the pose blend shapes and the skinning of the full mesh dominate it).
"""

from __future__ import annotations

import torch

from prohmr.body.model import BodyModel
from prohmr.constants import NUM_BODY_JOINTS, NUM_SMPL_JOINTS

__all__ = ["BodyJoints"]


class BodyJoints:
    """The 44 ProHMR joints and 24 SMPL joints of a body model, from its rotations and betas.

    Built from a :class:`~prohmr.body.model.BodyModel` (a snapshot of its arrays, on its device
    and in its dtype); not an ``nn.Module`` and it holds no trainable state.

    *Arguments*
        body_model: the body model whose joints to reproduce.

    *Example*
        >>> from prohmr.body.model import create_body_model
        >>> body = create_body_model()
        >>> rotations = torch.eye(3).expand(2, 24, 3, 3)
        >>> betas = torch.randn(2, 10, generator=torch.Generator().manual_seed(0))
        >>> joints, smpl_joints = BodyJoints(body)(rotations[:, :1], rotations[:, 1:], betas)
        >>> full = body(rotations[:, :1], rotations[:, 1:], betas)
        >>> bool(torch.allclose(joints, full.joints, atol=1e-5)), tuple(smpl_joints.shape)
        (True, (2, 24, 3))
    """

    def __init__(self, body_model: BodyModel) -> None:
        if not isinstance(body_model, BodyModel):
            raise ValueError(
                f"BodyJoints: `body_model` must be a BodyModel, got {type(body_model).__name__}"
            )
        layer = body_model.layer
        num_vertices = body_model.num_vertices
        landmark_vertices = layer.vertex_joint_selector.extra_joints_idxs.to(torch.long)
        body25_index = body_model.body25_index
        uses_landmark = body25_index >= NUM_SMPL_JOINTS
        used_landmarks = landmark_vertices[body25_index[uses_landmark] - NUM_SMPL_JOINTS]
        regressor_support = (body_model.extra_regressor != 0).any(dim=0).nonzero()[:, 0]
        vertex_ids, inverse = torch.unique(
            torch.cat([used_landmarks.to(regressor_support.device), regressor_support]),
            return_inverse=True,
        )
        num_used = vertex_ids.shape[0]

        shapedirs = layer.shapedirs[:, :, : body_model.num_betas]
        # Forward kinematics one tree level at a time (8 batched steps instead of 23): for
        # each level its joints, their parents, and where the parents sit in the level above.
        parents = layer.parents.tolist()
        device = layer.parents.device
        level_of = [0] * len(parents)
        for joint in range(1, len(parents)):
            level_of[joint] = level_of[parents[joint]] + 1
        previous, row = [0], {0: 0}
        self.levels: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for level in range(1, max(level_of) + 1):
            joints = [joint for joint in range(len(parents)) if level_of[joint] == level]
            self.levels.append((
                torch.tensor(joints, device=device),
                torch.tensor([parents[joint] for joint in joints], device=device),
                torch.tensor([previous.index(parents[joint]) for joint in joints], device=device),
            ))
            for joint in joints:
                row[joint] = len(row)
            previous = joints
        self.level_order = torch.tensor(
            [row[joint] for joint in range(len(parents))], device=device
        )
        self.v_template = layer.v_template[vertex_ids]
        self.shapedirs = shapedirs[vertex_ids]
        self.posedirs = (
            layer.posedirs.reshape(-1, num_vertices, 3)[:, vertex_ids].reshape(-1, num_used * 3)
        )
        self.lbs_weights = layer.lbs_weights[vertex_ids]
        self.joint_template = layer.J_regressor @ layer.v_template
        self.joint_shapedirs = torch.einsum("jv,vck->jck", layer.J_regressor, shapedirs)
        self.extra_regressor = body_model.extra_regressor[:, vertex_ids]
        # Where each of the 25 BODY_25 joints comes from: an SMPL joint (index < 24) or a
        # landmark vertex, stored after the 24 SMPL joints at 24 + its row in the subset.
        source = body25_index.clone()
        source[uses_landmark] = NUM_SMPL_JOINTS + inverse[: int(uses_landmark.sum())]
        self.body25_source = source
        self.num_betas = body_model.num_betas

    def __call__(
        self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Joints of posed bodies (inputs trusted: same dtype and device as the body model).

        *Arguments*
            global_orient: ``(P, 1, 3, 3)`` root rotations.
            body_pose: ``(P, 23, 3, 3)`` body rotations.
            betas: ``(P, num_betas)``.

        *Returns*
            ``joints (P, 44, 3)`` and ``smpl_joints (P, 24, 3)``, as
            :class:`~prohmr.body.model.BodyModel` (root at the body model's origin).
        """
        num = betas.shape[0]
        rotations = torch.cat([global_orient, body_pose], dim=1)
        identity = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
        rest_joints = self.joint_template + torch.einsum("jck,pk->pjc", self.joint_shapedirs, betas)
        shaped = self.v_template + torch.einsum("vck,pk->pvc", self.shapedirs, betas)
        pose_feature = (body_pose - identity).reshape(num, NUM_BODY_JOINTS * 9)
        posed = shaped + (pose_feature @ self.posedirs).reshape(num, -1, 3)
        world_rotations, smpl_joints = self._forward_kinematics(rotations, rest_joints)
        # Linear blend skinning of the vertex subset: per joint, x -> G x + (p - G J_rest).
        offsets = smpl_joints - (world_rotations @ rest_joints.unsqueeze(-1)).squeeze(-1)
        blended_rotations = torch.einsum("vj,pjab->pvab", self.lbs_weights, world_rotations)
        vertices = (blended_rotations @ posed.unsqueeze(-1)).squeeze(-1)
        vertices = vertices + self.lbs_weights @ offsets
        extra = torch.einsum("jv,pvc->pjc", self.extra_regressor, vertices)
        body25 = torch.cat([smpl_joints, vertices], dim=1)[:, self.body25_source]
        return torch.cat([body25, extra], dim=1), smpl_joints

    def _forward_kinematics(
        self, rotations: torch.Tensor, rest_joints: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World rotations ``(P, 24, 3, 3)`` and posed joint positions ``(P, 24, 3)``."""
        rotation, position = rotations[:, :1], rest_joints[:, :1]
        world_rotations, positions = [rotation], [position]
        for joints, parents, parent_index in self.levels:
            parent_rotation = rotation[:, parent_index]
            bones = (rest_joints[:, joints] - rest_joints[:, parents]).unsqueeze(-1)
            position = (parent_rotation @ bones).squeeze(-1) + position[:, parent_index]
            rotation = parent_rotation @ rotations[:, joints]
            world_rotations.append(rotation)
            positions.append(position)
        order = self.level_order
        return torch.cat(world_rotations, dim=1)[:, order], torch.cat(positions, dim=1)[:, order]
