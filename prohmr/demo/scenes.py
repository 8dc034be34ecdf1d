"""The demo's inputs: held-out synthetic people, each seen from two cameras, with noisy keypoints.

Every person is one scene of the synthetic world (:mod:`prohmr.data.synthetic`, studio domain,
validation split: with the open mocap data its poses come from the held-out actor(s)
:data:`~prohmr.data.pose_sources.HELD_OUT_ACTORS`). The first view is exactly image ``k`` of
the validation split that ``prohmr data synthesize --split val --seed <seed>`` writes; the
second view renders the same posed body after turning it about the vertical by
:data:`SECOND_VIEW_YAW_DEG` (equivalently, a second camera orbiting the person).

Each :class:`DemoView` carries what a user would have for a real photo: the network's crop
(the ground-truth box, as in validation), keypoints as a detector would give them (the
ground-truth 2D BODY_25 joints with Gaussian noise and a few missing), and, for scoring only,
the ground truth.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from prohmr.body.joints import BODY25_JOINT_NAMES, H36M_17_INPUT_2D, OPENPOSE_HIPS
from prohmr.constants import IMAGENET_MEAN, IMAGENET_STD
from prohmr.data.cropping import crop_image, crop_transform
from prohmr.data.image_dataset import BOX_SCALE_UNIT
from prohmr.data.synthetic import (
    DEFAULT_IMAGE_SIZE,
    SyntheticRenderer,
    SyntheticSample,
    draw_scene,
    load_pose_source,
    scene_rng,
)

__all__ = [
    "DEMO_DOMAIN",
    "DEMO_IMAGE_SIZE",
    "DEMO_SPLIT",
    "DISPLAY_SIZE",
    "KEYPOINT_NOISE_PX",
    "LIFTING_NOISE_PX",
    "NUM_DROPPED_KEYPOINTS",
    "SECOND_VIEW_YAW_DEG",
    "DemoPerson",
    "DemoView",
    "PoseSource",
    "crop_camera",
    "make_people",
    "resolve_pose_source",
]

logger = logging.getLogger(__name__)

_NUM_BODY25 = len(BODY25_JOINT_NAMES)

#: Domain of the demo images (the shipped model was trained on it).
DEMO_DOMAIN: str = "studio"
#: Split the scenes come from: its random streams (and mocap actors) are held out of training.
DEMO_SPLIT: str = "val"
#: Side of the rendered images in pixels (the synthetic world's default).
DEMO_IMAGE_SIZE: int = DEFAULT_IMAGE_SIZE
#: Side of the crops drawn in figures: the same box as the network's crop, resampled larger so
#: that rendered meshes and skeletons stay sharp.
DISPLAY_SIZE: int = 256
#: How far the second camera orbits the person, degrees about the vertical.
SECOND_VIEW_YAW_DEG: float = 70.0
#: Std of the Gaussian noise on the "detected" 2D keypoints, in image pixels.
KEYPOINT_NOISE_PX: float = 1.5
#: Visible keypoints (hips aside) marked missing per view, as a detector misses some.
NUM_DROPPED_KEYPOINTS: int = 2
#: Std of the noise on ProSkeleton's 17 input joints, in image pixels.
LIFTING_NOISE_PX: float = 1.0


@dataclass(frozen=True)
class PoseSource:
    """Where the demo's poses come from.

    Attributes:
        bank: ``(M, 72)`` world-frame poses, or None for random poses.
        description: one line for the report.
        note: a warning for the report when the mocap data was missing (else None).
    """

    bank: np.ndarray | None
    description: str
    note: str | None


@dataclass
class DemoView:
    """One image of a person and everything derived from it.

    Attributes:
        sample: the rendered image and its exact labels.
        crop: ``(3, S, S)`` ImageNet-normalised network input (``S`` the crop size).
        display: ``(D, D, 3)`` uint8, the same box resampled at :data:`DISPLAY_SIZE`.
        box_center: ``(2,)`` centre of the crop box in image pixels.
        box_size: side of the crop box in image pixels.
        keypoints: ``(25, 3)`` "detected" BODY_25 keypoints ``(x, y, conf)`` in image pixels
            (noisy; confidence 0 for the dropped ones and for joints outside the image).
        lifting_keypoints: ``(17, 2)`` noisy H36M-17 joints in image pixels (ProSkeleton's
            input).
    """

    sample: SyntheticSample
    crop: torch.Tensor
    display: np.ndarray
    box_center: np.ndarray
    box_size: float
    keypoints: np.ndarray
    lifting_keypoints: np.ndarray

    @property
    def joints_3d(self) -> torch.Tensor:
        """``(44, 3)`` ground-truth joints, camera axes, metres, relative to the pelvis."""
        return torch.from_numpy(self.sample.keypoints_3d[:, :3].copy())

    @property
    def lifting_joints_3d(self) -> torch.Tensor:
        """``(17, 3)`` ground-truth H36M-17 joints (ProSkeleton's output order)."""
        return self.joints_3d[list(H36M_17_INPUT_2D)]

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Image pixels ``(..., 2)`` → normalised crop coordinates ``px / S − 0.5``."""
        return (np.asarray(points) - self.box_center) / self.box_size

    def to_display(self, points: np.ndarray) -> np.ndarray:
        """Normalised crop coordinates ``(..., 2)`` → pixels of :attr:`display`."""
        return (np.asarray(points) + 0.5) * DISPLAY_SIZE

    def crop_keypoints(self) -> np.ndarray:
        """``(25, 3)`` :attr:`keypoints` in normalised crop coordinates (confidence kept)."""
        return np.concatenate([self.to_crop(self.keypoints[:, :2]), self.keypoints[:, 2:]], 1)


@dataclass
class DemoPerson:
    """One person: ``views[0]`` is the validation image, ``views[1]`` the second camera."""

    index: int
    views: tuple[DemoView, DemoView]


def crop_camera(
    focal_length: float, principal_point: np.ndarray, view: DemoView
) -> tuple[float, np.ndarray]:
    """An image camera expressed in the pixels of ``view.display``.

    The display crop is the box scaled by ``D / box_size`` and shifted, so a camera with focal
    ``f`` and principal point ``p`` (image pixels) becomes focal ``f · D / box`` and principal
    point ``(p − centre) · D / box + D / 2``.

    Example:
        >>> import types
        >>> view = types.SimpleNamespace(box_center=np.array([64.0, 64.0]), box_size=128.0)
        >>> focal, centre = crop_camera(1000.0, np.array([64.0, 64.0]), view)
        >>> focal * 128.0 / DISPLAY_SIZE, centre.tolist() == [DISPLAY_SIZE / 2] * 2
        (1000.0, True)
    """
    scale = DISPLAY_SIZE / view.box_size
    centre = (np.asarray(principal_point, dtype=np.float64) - view.box_center) * scale
    return float(focal_length) * scale, centre + DISPLAY_SIZE / 2.0


def resolve_pose_source(data_root: str | Path, body_model: torch.nn.Module) -> PoseSource:
    """The held-out mocap poses when ``data_root/hdm05`` exists, else random poses (noted).

    Arguments:
        data_root: the open-data folder.
        body_model: the body the mocap is retargeted to.
    """
    root = Path(data_root).expanduser()
    if (root / "hdm05").is_dir():
        bank, description = load_pose_source("mocap", DEMO_SPLIT, root, body_model=body_model)
        actors = ", ".join(description.get("actors", []))
        return PoseSource(
            bank,
            f"HDM05 mocap of held-out actor(s) {actors} ({len(bank)} poses), never seen in "
            "training",
            None,
        )
    note = (
        f"No mocap data under {root} (the open-data folder is absent): the demo images show "
        "random poses from the joint-limit sampler instead of held-out motion capture, so its "
        "numbers are not comparable with the model card's."
    )
    logger.warning(note)
    return PoseSource(None, "random poses (joint-limit sampler)", note)


def _second_view_yaw(yaw_deg: float) -> float:
    """Orbit towards the front so that both views stay within reach of the training cameras."""
    return yaw_deg - SECOND_VIEW_YAW_DEG if yaw_deg >= 0 else yaw_deg + SECOND_VIEW_YAW_DEG


def _normalise(pixels: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (tensor - mean) / std


def _detected_keypoints(sample: SyntheticSample, rng: np.random.Generator) -> np.ndarray:
    """Ground-truth BODY_25 keypoints with noise, some dropped (``(25, 3)``, image pixels)."""
    keypoints = sample.keypoints_2d[:_NUM_BODY25].astype(np.float64)
    noise = rng.normal(0.0, KEYPOINT_NOISE_PX, size=(_NUM_BODY25, 2))
    keypoints[:, :2] += noise * (keypoints[:, 2:] > 0)
    candidates = [
        joint for joint in range(_NUM_BODY25)
        if keypoints[joint, 2] > 0 and joint not in OPENPOSE_HIPS
    ]
    dropped = rng.choice(candidates, size=min(NUM_DROPPED_KEYPOINTS, len(candidates)),
                         replace=False)
    keypoints[dropped, 2] = 0.0
    return keypoints


def _view(
    sample: SyntheticSample, crop_size: int, rng: np.random.Generator
) -> DemoView:
    centre = sample.center.astype(np.float64)
    box = float(sample.scale) * BOX_SCALE_UNIT
    crop = crop_image(sample.image, crop_transform(centre, box, 0.0, crop_size), crop_size)
    display = crop_image(sample.image, crop_transform(centre, box, 0.0, DISPLAY_SIZE),
                         DISPLAY_SIZE)
    keypoints = _detected_keypoints(sample, rng)
    lifting = sample.keypoints_2d[list(H36M_17_INPUT_2D), :2].astype(np.float64)
    lifting = lifting + rng.normal(0.0, LIFTING_NOISE_PX, size=lifting.shape)
    return DemoView(
        sample=sample, crop=_normalise(crop), display=display, box_center=centre,
        box_size=box, keypoints=keypoints, lifting_keypoints=lifting,
    )


def make_people(
    num_people: int,
    seed: int,
    pose_source: PoseSource,
    renderer: SyntheticRenderer,
    crop_size: int,
) -> list[DemoPerson]:
    """Render ``num_people`` held-out people from two cameras each and derive their inputs.

    Arguments:
        num_people: how many people (validation images ``0 .. num_people - 1``).
        seed: the synthetic dataset's seed; also seeds the keypoint noise.
        pose_source: from :func:`resolve_pose_source`.
        renderer: a studio-domain :class:`~prohmr.data.synthetic.SyntheticRenderer`.
        crop_size: side of the network's crops.

    Returns:
        One :class:`DemoPerson` per image.
    """
    scenes = [
        draw_scene(scene_rng(seed, DEMO_SPLIT, DEMO_DOMAIN, index), renderer.style,
                   pose_source.bank)
        for index in range(num_people)
    ]
    turned = [dataclasses.replace(scene, yaw_deg=_second_view_yaw(scene.yaw_deg))
              for scene in scenes]
    samples: Sequence[SyntheticSample] = renderer.render(scenes + turned)
    rng = np.random.default_rng([seed, num_people])
    people = []
    for index in range(num_people):
        first = _view(samples[index], crop_size, rng)
        second = _view(samples[num_people + index], crop_size, rng)
        people.append(DemoPerson(index=index, views=(first, second)))
    return people
