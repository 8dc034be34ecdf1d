"""Camera and image constants shared by every module (SPEC §1.3).

One definition each; everything else imports them from here.
"""

from __future__ import annotations

__all__ = [
    "FOCAL_LENGTH",
    "IMAGE_SIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NUM_BETAS",
    "NUM_SMPL_JOINTS",
    "NUM_BODY_JOINTS",
    "NUM_VERTICES",
    "POSE_6D_DIM",
]

#: Focal length in pixels of ProHMR's virtual camera (for a 224-px crop).
FOCAL_LENGTH: float = 5000.0
#: Side of the square network crop in pixels.
IMAGE_SIZE: int = 224
#: ImageNet normalisation applied to crops.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Number of SMPL shape coefficients used throughout.
NUM_BETAS: int = 10
#: SMPL joints: global orientation + 23 body joints.
NUM_SMPL_JOINTS: int = 24
NUM_BODY_JOINTS: int = 23
#: Vertices of SMPL's topology (also of the procedural default body).
NUM_VERTICES: int = 6890
#: Flow variable: 24 joints x 6D.
POSE_6D_DIM: int = 144
