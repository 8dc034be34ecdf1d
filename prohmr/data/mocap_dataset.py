"""Motion-capture SMPL parameters: the "real" samples of the adversarial pose prior (SPEC §4.2).

The ``.npz`` holds ``body_pose (N, 72)`` (axis-angle in radians, global orientation first)
and ``betas (N, 10)``; both are required.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from prohmr.constants import NUM_BETAS
from prohmr.data.image_dataset import load_npz

__all__ = ["MocapDataset"]

_SHAPES: dict[str, tuple[int, ...]] = {"body_pose": (72,), "betas": (NUM_BETAS,)}


class MocapDataset(Dataset):
    """SMPL poses and shapes from motion capture.

    Arguments:
        npz_path: ``.npz`` with ``body_pose (N, 72)`` and ``betas (N, 10)``.

    Items: ``{"body_pose": (72,), "betas": (10,)}`` float32 tensors.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "mocap.npz"
        >>> np.savez(path, body_pose=np.zeros((5, 72)), betas=np.zeros((5, 10)))
        >>> dataset = MocapDataset(path)
        >>> len(dataset), tuple(dataset[0]["body_pose"].shape)
        (5, (72,))
    """

    def __init__(self, npz_path: str | Path) -> None:
        super().__init__()
        self.npz_path = Path(npz_path)
        arrays = load_npz(self.npz_path, required=tuple(_SHAPES))
        for key, trailing in _SHAPES.items():
            array = arrays[key]
            if array.ndim != 2 or tuple(array.shape[1:]) != trailing:
                raise ValueError(
                    f"{self.npz_path}: key {key!r} must have shape (N, {trailing[0]}), "
                    f"got {tuple(array.shape)}"
                )
            if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
                raise ValueError(f"{self.npz_path}: key {key!r} must hold finite numbers")
        if len(arrays["body_pose"]) != len(arrays["betas"]):
            raise ValueError(
                f"{self.npz_path}: 'body_pose' has {len(arrays['body_pose'])} rows but 'betas' "
                f"has {len(arrays['betas'])}"
            )
        self.body_pose = torch.from_numpy(arrays["body_pose"].astype(np.float32))
        self.betas = torch.from_numpy(arrays["betas"].astype(np.float32))

    def __len__(self) -> int:
        return len(self.body_pose)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"body_pose": self.body_pose[index], "betas": self.betas[index]}
