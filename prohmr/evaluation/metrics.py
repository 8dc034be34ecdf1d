"""Deterministic 3D pose and mesh metrics: MPJPE, PA-MPJPE, PVE and acceleration error.

Inputs are in metres; every metric returns millimetres (``MILLIMETRES_PER_METRE``), one value
per item for any leading dimensions (``(B,)``, ``(B, N)``, ...).

Which joints are evaluated and where the root is are not universal (SPEC §7): SPIN, ProHMR
and BOA centre at the pelvis joint 39 and evaluate the 14 LSP joints, while VIBE and MAED
centre at the mean of the two hips. A :class:`JointProtocol` names one such choice so that a
reported number can say which protocol it follows.

Order of operations (as SPIN's and ProHMR's evaluators): both skeletons are first centred
at the root, computed from the **full** joint array, and only **then** reduced to the
evaluated joints. For ``PROHMR_14`` this matters: the pelvis (joint 39) is not one of the 14
evaluated joints, so it must be taken before the selection.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import cast

import torch

from prohmr.body.joints import (
    EVAL_JOINTS_14,
    EXTRA_JOINT_NAMES,
    H36M_17_FROM_EXTRA,
    H36M_17_INPUT_2D,
    PELVIS_INDEX,
)
from prohmr.geometry.procrustes import procrustes_align

__all__ = [
    "MILLIMETRES_PER_METRE",
    "JointProtocol",
    "PROHMR_14",
    "MEAN_OF_HIPS_14",
    "H36M_17",
    "H36M_17_FROM_44",
    "JOINT_PROTOCOLS",
    "centre_and_select",
    "mpjpe",
    "pa_mpjpe",
    "pve",
    "acceleration",
    "acceleration_error",
]

#: Metrics take metres and report millimetres.
MILLIMETRES_PER_METRE: float = 1000.0

RootSpec = int | tuple[int, ...] | None


@dataclass(frozen=True)
class JointProtocol:
    """Which joints are evaluated and what the root is.

    Attributes:
        name: short identifier recorded next to reported numbers.
        joint_indices: indices of the evaluated joints in the input array; ``None`` keeps
            every joint.
        root: index of the root joint; a tuple means "the mean of these joints" (VIBE/MAED's
            mean of the hips); ``None`` means no root centring. Indices refer to the full
            input array, not to ``joint_indices``.
    """

    name: str
    joint_indices: tuple[int, ...] | None
    root: RootSpec

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"JointProtocol: `name` must be a non-empty string, got {self.name!r}")
        if self.joint_indices is not None:
            indices = tuple(self.joint_indices)
            if not indices or not all(_is_index(i) for i in indices):
                raise ValueError(
                    "JointProtocol: `joint_indices` must be None or a non-empty sequence of "
                    f"non-negative ints, got {self.joint_indices!r}"
                )
            object.__setattr__(self, "joint_indices", indices)
        if self.root is not None and not _is_index(self.root):
            root = tuple(self.root) if isinstance(self.root, (tuple, list)) else None
            if not root or not all(_is_index(i) for i in root):
                raise ValueError(
                    "JointProtocol: `root` must be None, a non-negative int or a non-empty "
                    f"tuple of them, got {self.root!r}"
                )
            object.__setattr__(self, "root", root)

    def required_joints(self) -> int:
        """The smallest joint count ``J`` an input array needs for this protocol."""
        indices = list(self.joint_indices or ())
        if isinstance(self.root, int):
            indices.append(self.root)
        elif self.root is not None:
            indices.extend(self.root)
        return max(indices, default=-1) + 1


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_R_HIP = 25 + EXTRA_JOINT_NAMES.index("R_Hip")  # 27
_L_HIP = 25 + EXTRA_JOINT_NAMES.index("L_Hip")  # 28

#: SPIN/ProHMR/BOA: centre the 44 joints at the pelvis (39), evaluate the 14 LSP joints.
PROHMR_14 = JointProtocol("prohmr_14", EVAL_JOINTS_14, PELVIS_INDEX)
#: VIBE/MAED: the same 14 joints of the 44, centred at the mean of the LSP hips (27, 28).
MEAN_OF_HIPS_14 = JointProtocol("mean_of_hips_14", EVAL_JOINTS_14, (_R_HIP, _L_HIP))
#: 17-joint arrays in the library's H36M-17 order (``H36M_17_FROM_EXTRA``, ProSkeleton),
#: centred at the pelvis, which sits at index 13 of that array and is evaluated with the rest.
H36M_17 = JointProtocol("h36m_17", None, H36M_17_FROM_EXTRA.index(PELVIS_INDEX - 25))
#: The same 17 H36M joints picked out of ProHMR's 44, centred at the pelvis (39).
H36M_17_FROM_44 = JointProtocol("h36m_17_from_44", H36M_17_INPUT_2D, PELVIS_INDEX)
#: Every preset by name.
JOINT_PROTOCOLS: dict[str, JointProtocol] = {
    protocol.name: protocol for protocol in (PROHMR_14, MEAN_OF_HIPS_14, H36M_17, H36M_17_FROM_44)
}


class _Keep(enum.Enum):
    """Default of the ``root``/``joint_indices`` overrides: use the protocol's value."""

    PROTOCOL = "protocol"


_KEEP = _Keep.PROTOCOL


def _resolve_protocol(
    protocol: JointProtocol,
    root: RootSpec | _Keep,
    joint_indices: tuple[int, ...] | None | _Keep,
    function: str,
) -> JointProtocol:
    if not isinstance(protocol, JointProtocol):
        raise ValueError(
            f"{function}: `protocol` must be a JointProtocol, got {type(protocol).__name__}"
        )
    changes: dict[str, object] = {}
    if root is not _KEEP:
        changes["root"] = root
    if joint_indices is not _KEEP:
        changes["joint_indices"] = joint_indices
    if not changes:
        return protocol
    return replace(protocol, name=f"{protocol.name}+custom", **changes)


def _describe(value: object) -> str:
    """A tensor's shape, or any other value's type, for error messages."""
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    return type(value).__name__


def _check_points(value: object, name: str, function: str, what: str = "J") -> None:
    """Raise ``ValueError`` unless ``value`` is a finite floating ``(..., what, 3)`` tensor."""
    expected = f"(..., {what}, 3)"
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"{function}: `{name}` must be a torch.Tensor of shape {expected}, "
            f"got {type(value).__name__}"
        )
    if value.ndim < 2 or value.shape[-1] != 3 or value.shape[-2] == 0:
        raise ValueError(
            f"{function}: `{name}` must have shape {expected} with {what} >= 1, "
            f"got {tuple(value.shape)}"
        )
    if not value.is_floating_point():
        raise ValueError(f"{function}: `{name}` must be floating point, got {value.dtype}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{function}: `{name}` contains NaN or infinite values")


def _check_pair(pred: object, gt: object, function: str, what: str = "J") -> None:
    _check_points(pred, "pred", function, what)
    _check_points(gt, "gt", function, what)
    pred, gt = cast(torch.Tensor, pred), cast(torch.Tensor, gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f"{function}: `gt` must have the shape of `pred` {tuple(pred.shape)}, "
            f"got {tuple(gt.shape)}"
        )
    if pred.device != gt.device or pred.dtype != gt.dtype:
        raise ValueError(
            f"{function}: `pred` and `gt` must share device and dtype, got "
            f"{pred.device}/{pred.dtype} and {gt.device}/{gt.dtype}"
        )


def _check_protocol_fits(protocol: JointProtocol, num_joints: int, function: str) -> None:
    needed = protocol.required_joints()
    if needed > num_joints:
        raise ValueError(
            f"{function}: protocol {protocol.name!r} indexes joint {needed - 1}, but the "
            f"inputs have shape (..., {num_joints}, 3)"
        )


def _centre_and_select(points: torch.Tensor, protocol: JointProtocol) -> torch.Tensor:
    """Centre ``(..., J, 3)`` at the protocol's root, then keep its joints."""
    if isinstance(protocol.root, int):
        points = points - points[..., protocol.root : protocol.root + 1, :]
    elif protocol.root is not None:
        points = points - points[..., list(protocol.root), :].mean(dim=-2, keepdim=True)
    if protocol.joint_indices is not None:
        points = points[..., list(protocol.joint_indices), :]
    return points


def _joint_error(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over ``(..., J, 3)`` in millimetres, ``(...)``."""
    return (pred - gt).norm(dim=-1).mean(dim=-1) * MILLIMETRES_PER_METRE


def centre_and_select(points: torch.Tensor, protocol: JointProtocol = PROHMR_14) -> torch.Tensor:
    """Centre joints at the protocol's root (from the full array), then select its joints.

    Arguments:
        points: ``(..., J, 3)`` joints.
        protocol: the :class:`JointProtocol`; its indices must be ``< J``.

    Returns:
        ``(..., K, 3)`` root-relative evaluated joints (``K = len(joint_indices)``, or ``J``).

    Example:
        >>> points = torch.arange(12.0).reshape(4, 3)
        >>> centre_and_select(points, JointProtocol("demo", (2, 3), root=(0, 1)))
        tensor([[4.5000, 4.5000, 4.5000],
                [7.5000, 7.5000, 7.5000]])
    """
    function = "centre_and_select"
    _check_points(points, "points", function)
    if not isinstance(protocol, JointProtocol):
        raise ValueError(
            f"{function}: `protocol` must be a JointProtocol, got {type(protocol).__name__}"
        )
    _check_protocol_fits(protocol, points.shape[-2], function)
    return _centre_and_select(points, protocol)


def mpjpe(
    pred: torch.Tensor,
    gt: torch.Tensor,
    protocol: JointProtocol = PROHMR_14,
    *,
    root: RootSpec | _Keep = _KEEP,
    joint_indices: tuple[int, ...] | None | _Keep = _KEEP,
) -> torch.Tensor:
    """Mean per-joint position error after root centring, in millimetres.

    Both skeletons are centred at the root computed from the full array, then reduced to the
    evaluated joints (see the module docstring), then compared joint by joint.

    Arguments:
        pred: ``(..., J, 3)`` predicted joints in metres.
        gt: ``(..., J, 3)`` ground-truth joints in metres, same shape.
        protocol: the :class:`JointProtocol` (default ``PROHMR_14``: pelvis 39, 14 joints of 44).
        root: override of ``protocol.root``.
        joint_indices: override of ``protocol.joint_indices``.

    Returns:
        ``(...)`` MPJPE per item in millimetres.

    Example:
        >>> gt = torch.zeros(2, 3)
        >>> pred = torch.tensor([[0.0, 0.0, 0.0], [0.03, 0.04, 0.0]])
        >>> mpjpe(pred, gt, root=0, joint_indices=None)
        tensor(25.)
    """
    function = "mpjpe"
    protocol = _resolve_protocol(protocol, root, joint_indices, function)
    _check_pair(pred, gt, function)
    _check_protocol_fits(protocol, pred.shape[-2], function)
    return _joint_error(_centre_and_select(pred, protocol), _centre_and_select(gt, protocol))


def pa_mpjpe(
    pred: torch.Tensor,
    gt: torch.Tensor,
    protocol: JointProtocol = PROHMR_14,
    *,
    root: RootSpec | _Keep = _KEEP,
    joint_indices: tuple[int, ...] | None | _Keep = _KEEP,
) -> torch.Tensor:
    """MPJPE after a per-item similarity Procrustes alignment, in millimetres.

    The evaluated joints of ``pred`` are aligned to those of ``gt`` by the best scale, proper
    rotation (reflections excluded) and translation (:func:`prohmr.geometry.procrustes_align`).
    Only the selected joints enter the alignment. The alignment removes any translation, so
    the protocol's root does not change the result; it is applied anyway, as in SPIN.

    Arguments:
        pred: ``(..., J, 3)`` predicted joints in metres.
        gt: ``(..., J, 3)`` ground-truth joints in metres, same shape.
        protocol: the :class:`JointProtocol` (default ``PROHMR_14``).
        root: override of ``protocol.root``.
        joint_indices: override of ``protocol.joint_indices``.

    Returns:
        ``(...)`` PA-MPJPE per item in millimetres.

    Example:
        >>> gt = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        >>> pred = 0.5 * gt @ torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]) + 2.0
        >>> round(pa_mpjpe(pred, gt, root=None, joint_indices=None).item(), 3)
        0.0
    """
    function = "pa_mpjpe"
    protocol = _resolve_protocol(protocol, root, joint_indices, function)
    _check_pair(pred, gt, function)
    _check_protocol_fits(protocol, pred.shape[-2], function)
    pred = _centre_and_select(pred, protocol)
    gt = _centre_and_select(gt, protocol)
    aligned = cast(torch.Tensor, procrustes_align(pred, gt))
    return _joint_error(aligned, gt)


def pve(
    pred_vertices: torch.Tensor,
    gt_vertices: torch.Tensor,
    root_align: bool | tuple[torch.Tensor, torch.Tensor] = False,
) -> torch.Tensor:
    """Per-vertex error (mean Euclidean vertex distance), in millimetres.

    ``root_align`` chooses what is subtracted first:

    - ``False`` (SPIN, VIBE, MAED): nothing; both meshes are expected in the same frame,
      e.g. both produced by the body model without a global translation.
    - ``True``: each mesh is centred at its own vertex centroid.
    - ``(pred_root, gt_root)``, each ``(..., 3)``: each mesh is centred at the given point,
      e.g. the pelvis joint of the matching skeleton.

    Arguments:
        pred_vertices: ``(..., V, 3)`` predicted vertices in metres.
        gt_vertices: ``(..., V, 3)`` ground-truth vertices in metres, same shape.
        root_align: see above.

    Returns:
        ``(...)`` PVE per item in millimetres.

    Example:
        >>> gt = torch.zeros(1, 4, 3)
        >>> pve(gt + torch.tensor([0.0, 0.0, 0.01]), gt)
        tensor([10.])
        >>> pve(gt + torch.tensor([0.0, 0.0, 0.01]), gt, root_align=True)
        tensor([0.])
    """
    function = "pve"
    _check_points(pred_vertices, "pred_vertices", function, "V")
    _check_points(gt_vertices, "gt_vertices", function, "V")
    if pred_vertices.shape != gt_vertices.shape:
        raise ValueError(
            f"{function}: `gt_vertices` must have the shape of `pred_vertices` "
            f"{tuple(pred_vertices.shape)}, got {tuple(gt_vertices.shape)}"
        )
    if isinstance(root_align, bool):
        if root_align:
            pred_vertices = pred_vertices - pred_vertices.mean(dim=-2, keepdim=True)
            gt_vertices = gt_vertices - gt_vertices.mean(dim=-2, keepdim=True)
    elif isinstance(root_align, (tuple, list)) and len(root_align) == 2:
        expected = tuple(pred_vertices.shape[:-2]) + (3,)
        for name, root in zip(("pred_root", "gt_root"), root_align):
            if not isinstance(root, torch.Tensor) or tuple(root.shape) != expected:
                raise ValueError(
                    f"{function}: `root_align` {name} must be a tensor of shape {expected}, "
                    f"got {_describe(root)}"
                )
            if not bool(torch.isfinite(root).all()):
                raise ValueError(f"{function}: `root_align` {name} contains NaN or infinite values")
        pred_vertices = pred_vertices - root_align[0][..., None, :]
        gt_vertices = gt_vertices - root_align[1][..., None, :]
    else:
        raise ValueError(
            f"{function}: `root_align` must be a bool or a (pred_root, gt_root) pair of "
            f"(..., 3) tensors, got {type(root_align).__name__}"
        )
    return _joint_error(pred_vertices, gt_vertices)


def _check_sequence(value: torch.Tensor, name: str, function: str) -> None:
    if value.ndim < 3 or value.shape[-3] < 3:
        raise ValueError(
            f"{function}: `{name}` must have shape (..., T, J, 3) with T >= 3 frames, "
            f"got {tuple(value.shape)}"
        )


def _second_difference(joints: torch.Tensor) -> torch.Tensor:
    """``x[t] - 2 x[t+1] + x[t+2]`` along the frame axis of ``(..., T, J, 3)``."""
    return joints[..., :-2, :, :] - 2.0 * joints[..., 1:-1, :, :] + joints[..., 2:, :, :]


def acceleration(
    joints: torch.Tensor,
    protocol: JointProtocol = MEAN_OF_HIPS_14,
    *,
    root: RootSpec | _Keep = _KEEP,
    joint_indices: tuple[int, ...] | None | _Keep = _KEEP,
) -> torch.Tensor:
    """Mean acceleration magnitude of a joint sequence (VIBE's "accel"), in mm/frame².

    Arguments:
        joints: ``(..., T, J, 3)`` joints in metres over ``T >= 3`` frames.
        protocol: the :class:`JointProtocol` (default ``MEAN_OF_HIPS_14``, as VIBE).
        root: override of ``protocol.root``.
        joint_indices: override of ``protocol.joint_indices``.

    Returns:
        ``(..., T - 2)`` per frame: the mean over joints of ``|x[t] - 2 x[t+1] + x[t+2]|``.

    Example:
        >>> t = torch.arange(4.0)[:, None, None]
        >>> acceleration(0.001 * t**2 * torch.ones(4, 1, 3), root=None, joint_indices=None)
        tensor([3.4641, 3.4641])
    """
    function = "acceleration"
    protocol = _resolve_protocol(protocol, root, joint_indices, function)
    _check_points(joints, "joints", function)
    _check_sequence(joints, "joints", function)
    _check_protocol_fits(protocol, joints.shape[-2], function)
    accel = _second_difference(_centre_and_select(joints, protocol))
    return accel.norm(dim=-1).mean(dim=-1) * MILLIMETRES_PER_METRE


def acceleration_error(
    pred: torch.Tensor,
    gt: torch.Tensor,
    visible: torch.Tensor | None = None,
    protocol: JointProtocol = MEAN_OF_HIPS_14,
    *,
    root: RootSpec | _Keep = _KEEP,
    joint_indices: tuple[int, ...] | None | _Keep = _KEEP,
) -> torch.Tensor:
    """Acceleration error as in VIBE, in mm/frame².

    Both sequences are root-centred and reduced to the protocol's joints (VIBE: the 14 joints
    centred at the mean of the hips, the default here). Accelerations are second finite
    differences ``a[t] = x[t] - 2 x[t+1] + x[t+2]``; the error of window ``t`` is the mean over
    joints of ``|a_pred[t] - a_gt[t]|``.

    Arguments:
        pred: ``(..., T, J, 3)`` predicted joints in metres, ``T >= 3``.
        gt: ``(..., T, J, 3)`` ground-truth joints in metres, same shape.
        visible: optional ``(..., T)`` bool mask of valid frames. As VIBE, a window counts
            only when its three frames ``t, t+1, t+2`` are all visible.
        protocol: the :class:`JointProtocol` (default ``MEAN_OF_HIPS_14``).
        root: override of ``protocol.root``.
        joint_indices: override of ``protocol.joint_indices``.

    Returns:
        Without ``visible``: ``(..., T - 2)`` error per window. With ``visible``: a 1-D tensor
        of the errors of the valid windows only (boolean indexing flattens leading dims);
        average it to report the sequence's acceleration error.

    Example:
        >>> t = torch.arange(5.0)[:, None, None]
        >>> gt = 0.001 * t**2 * torch.tensor([1.0, 0.0, 0.0])
        >>> pred = 0.001 * t * torch.tensor([1.0, 0.0, 0.0])  # constant velocity
        >>> acceleration_error(pred, gt, root=None, joint_indices=None).round(decimals=3)
        tensor([2., 2., 2.])
    """
    function = "acceleration_error"
    protocol = _resolve_protocol(protocol, root, joint_indices, function)
    _check_pair(pred, gt, function)
    _check_sequence(pred, "pred", function)
    _check_protocol_fits(protocol, pred.shape[-2], function)
    accel_pred = _second_difference(_centre_and_select(pred, protocol))
    accel_gt = _second_difference(_centre_and_select(gt, protocol))
    error = (accel_pred - accel_gt).norm(dim=-1).mean(dim=-1) * MILLIMETRES_PER_METRE
    if visible is None:
        return error
    expected = tuple(pred.shape[:-2])
    if not isinstance(visible, torch.Tensor) or tuple(visible.shape) != expected:
        raise ValueError(
            f"{function}: `visible` must be a tensor of shape {expected} (..., T), "
            f"got {_describe(visible)}"
        )
    visible = visible.to(device=error.device, dtype=torch.bool)
    window_visible = visible[..., :-2] & visible[..., 1:-1] & visible[..., 2:]
    return error[window_visible]
