"""A synthetic image world: rendered bodies with exact labels, in the image-dataset format.

Each image shows the body model (the procedural default unless ``PROHMR_SMPL_DIR`` or a path
says otherwise) in a pose from :mod:`prohmr.data.pose_sources`, with a random shape, turned
about the vertical, seen by a pinhole camera, coloured by body part and Lambertian-shaded
over a background. Two visually distinct domains (:data:`DOMAINS`) share the generator:

- ``"studio"``: plain vertical-gradient backgrounds, near-frontal cameras at body height,
  bright even light from the camera side, muted part colours.
- ``"outdoor"``: sky, horizon and textured ground with clutter and sensor noise, any body
  heading, cameras from slightly below to well above, a harsh side light, a saturated
  palette with other hues.

Everything a training label needs is exact: the SMPL pose with the global orientation in the
camera frame, the betas, the 44 joints projected in image pixels and in 3D. The camera
(x right, y down, z forward) has focal length ``FOCAL_LENGTH * image_size / IMAGE_SIZE`` and
its principal point at the image centre, so the ``image_size`` frame is the 224-pixel crop
of ProHMR's own camera scaled; the camera translation and focal length of every row are in
the dataset too. Images are a deterministic function of ``(seed, split, domain, index)``,
whatever the number of workers.

:func:`synthesize_dataset` writes ``<out_dir>/<split>.npz`` (the format of
:class:`prohmr.data.ImageDataset`, with ``image_root = <out_dir>/images``), the images under
``<out_dir>/images/<split>/`` and ``<out_dir>/<split>.json`` with the render settings (also
in the ``.npz`` as the JSON string ``render_settings``).
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from prohmr._utils import single_thread
from prohmr.body.joints import NUM_PROHMR_JOINTS, PELVIS_INDEX, SMPL_JOINT_NAMES
from prohmr.constants import FOCAL_LENGTH, IMAGE_SIZE, NUM_BETAS, NUM_SMPL_JOINTS
from prohmr.data.augmentation import flip_smpl_pose
from prohmr.data.image_dataset import BOX_SCALE_UNIT, ZEROED_BODY25_3D_JOINTS
from prohmr.data.pose_sources import (
    DEFAULT_DATA_ROOT,
    HELD_OUT_ACTORS,
    mocap_pose_bank,
    random_pose,
)
from prohmr.geometry import axis_angle_to_matrix, matrix_to_axis_angle, perspective_projection
from prohmr.rendering import render_mesh

__all__ = [
    "SYNTHETIC_VERSION",
    "SPLITS",
    "POSE_SOURCES",
    "IMAGE_FORMATS",
    "IMAGE_DIRNAME",
    "DEFAULT_IMAGE_SIZE",
    "BOX_MARGIN",
    "BETA_LIMIT",
    "CHUNK_SIZE",
    "DomainStyle",
    "DOMAINS",
    "SceneParameters",
    "SyntheticSample",
    "SyntheticRenderer",
    "face_part_labels",
    "focal_length_for",
    "scene_rng",
    "draw_scene",
    "draw_background",
    "load_pose_source",
    "generate_samples",
    "synthesize_dataset",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the images or labels for a given seed change; recorded in every dataset.
SYNTHETIC_VERSION: int = 1
#: Dataset splits; each draws from its own random streams (and its own mocap actors).
SPLITS: tuple[str, ...] = ("train", "val")
#: Pose sources by name; ``"auto"`` is mocap when the data folder exists, else random.
POSE_SOURCES: tuple[str, ...] = ("auto", "mocap", "random")
#: Image file formats; JPEG files are 4:4:4 at :data:`JPEG_QUALITY`.
IMAGE_FORMATS: tuple[str, ...] = ("jpg", "png")
JPEG_QUALITY: int = 95
#: Subfolder of the output folder holding the images (the datasets' ``image_root``).
IMAGE_DIRNAME: str = "images"
DEFAULT_IMAGE_SIZE: int = 128
#: ``scale`` is this many times the larger side of the body's projected bounding box / 200.
BOX_MARGIN: float = 1.2
#: Shapes are N(0, 1) clipped to +-this.
BETA_LIMIT: float = 2.0
#: Images rendered per body-model and rasteriser batch (and per worker task).
CHUNK_SIZE: int = 16
#: Probability of mirroring a pose from the source (doubles its variety).
MIRROR_PROBABILITY: float = 0.5

_MIN_IMAGE_SIZE, _MAX_IMAGE_SIZE = 16, 1024
_NPZ_DATE = (1980, 1, 1, 0, 0, 0)


Colour = tuple[float, float, float]


def _palette(colors: dict[str, Colour]) -> tuple[Colour, ...]:
    return tuple(colors[name] for name in SMPL_JOINT_NAMES)


# One albedo per SMPL joint's part. Left parts and right parts take different hue families
# so that a mirrored pose never looks the same.
_STUDIO_COLORS = {
    "pelvis": (0.42, 0.43, 0.50), "spine1": (0.62, 0.60, 0.55), "spine2": (0.67, 0.65, 0.59),
    "spine3": (0.71, 0.69, 0.63), "left_collar": (0.60, 0.66, 0.74),
    "right_collar": (0.76, 0.66, 0.60), "neck": (0.80, 0.70, 0.62), "head": (0.86, 0.76, 0.67),
    "left_hip": (0.42, 0.50, 0.68), "left_knee": (0.53, 0.61, 0.78),
    "left_ankle": (0.34, 0.40, 0.55), "left_foot": (0.28, 0.32, 0.44),
    "right_hip": (0.70, 0.46, 0.42), "right_knee": (0.80, 0.57, 0.51),
    "right_ankle": (0.56, 0.35, 0.31), "right_foot": (0.46, 0.29, 0.27),
    "left_shoulder": (0.44, 0.65, 0.64), "left_elbow": (0.55, 0.76, 0.73),
    "left_wrist": (0.66, 0.80, 0.72), "left_hand": (0.74, 0.84, 0.76),
    "right_shoulder": (0.76, 0.65, 0.42), "right_elbow": (0.86, 0.75, 0.52),
    "right_wrist": (0.88, 0.78, 0.62), "right_hand": (0.90, 0.82, 0.70),
}
_OUTDOOR_COLORS = {
    "pelvis": (0.12, 0.14, 0.55), "spine1": (0.85, 0.18, 0.12), "spine2": (0.92, 0.30, 0.12),
    "spine3": (0.95, 0.42, 0.08), "left_collar": (0.20, 0.80, 0.30),
    "right_collar": (0.70, 0.20, 0.80), "neck": (0.62, 0.42, 0.30), "head": (0.55, 0.37, 0.24),
    "left_hip": (0.08, 0.62, 0.18), "left_knee": (0.50, 0.88, 0.10),
    "left_ankle": (0.05, 0.35, 0.10), "left_foot": (0.90, 0.90, 0.10),
    "right_hip": (0.58, 0.10, 0.68), "right_knee": (0.90, 0.30, 0.80),
    "right_ankle": (0.30, 0.05, 0.35), "right_foot": (0.10, 0.85, 0.90),
    "left_shoulder": (0.08, 0.75, 0.60), "left_elbow": (0.55, 1.00, 0.40),
    "left_wrist": (0.85, 1.00, 0.30), "left_hand": (0.95, 0.95, 0.55),
    "right_shoulder": (0.90, 0.10, 0.50), "right_elbow": (1.00, 0.48, 0.70),
    "right_wrist": (1.00, 0.62, 0.30), "right_hand": (1.00, 0.80, 0.55),
}


@dataclass(frozen=True)
class DomainStyle:
    """How one domain looks: camera, light, colours and background distributions.

    Angles in degrees. ``yaw_std_deg = None`` means a uniform body heading; otherwise a
    normal around facing the camera. The camera elevation is positive above the body,
    looking down. ``fill`` is the range of the body's larger projected extent as a fraction
    of the image side; ``offset`` the largest shift of its centre from the image centre, as
    a fraction of the side. The light comes from ``light_azimuth_deg`` (0 = from the camera,
    positive = from the image's right) and ``light_elevation_deg`` (positive = from above);
    shading is ``albedo * (ambient + diffuse * max(0, n . l))``. Each part colour of
    ``palette`` (one per SMPL joint) is scaled by ``U(1 - colour_jitter, 1 + colour_jitter)``
    per image. ``background`` is ``"gradient"`` or ``"outdoor"``; ``noise_std`` the sensor
    noise added to the final image (0..1 scale).
    """

    name: str
    yaw_std_deg: float | None
    elevation_deg: tuple[float, float]
    roll_std_deg: float
    fill: tuple[float, float]
    offset: float
    light_azimuth_deg: tuple[float, float]
    light_elevation_deg: tuple[float, float]
    ambient: float
    diffuse: float
    palette: tuple[Colour, ...]
    colour_jitter: float
    background: str
    noise_std: float

    def __post_init__(self) -> None:
        if len(self.palette) != NUM_SMPL_JOINTS:
            raise ValueError(
                f"palette must hold {NUM_SMPL_JOINTS} colours, got {len(self.palette)}"
            )
        if self.background not in ("gradient", "outdoor"):
            raise ValueError(
                f"background must be 'gradient' or 'outdoor', got {self.background!r}"
            )


#: The two domains by name.
DOMAINS: dict[str, DomainStyle] = {
    "studio": DomainStyle(
        name="studio", yaw_std_deg=45.0, elevation_deg=(-3.0, 8.0), roll_std_deg=0.0,
        fill=(0.65, 0.82), offset=0.05, light_azimuth_deg=(-25.0, 25.0),
        light_elevation_deg=(10.0, 35.0), ambient=0.55, diffuse=0.5,
        palette=_palette(_STUDIO_COLORS), colour_jitter=0.05, background="gradient",
        noise_std=0.0,
    ),
    "outdoor": DomainStyle(
        name="outdoor", yaw_std_deg=None, elevation_deg=(-10.0, 40.0), roll_std_deg=4.0,
        fill=(0.55, 0.8), offset=0.08, light_azimuth_deg=(-100.0, 100.0),
        light_elevation_deg=(25.0, 70.0), ambient=0.18, diffuse=1.0,
        palette=_palette(_OUTDOOR_COLORS), colour_jitter=0.15, background="outdoor",
        noise_std=0.025,
    ),
}


@dataclass
class SceneParameters:
    """Every random draw of one image (world frame: y up, the body facing +z at yaw 0).

    Attributes:
        world_pose: ``(72,)`` axis-angle SMPL pose in the world frame (after mirroring).
        betas: ``(10,)`` shape.
        yaw_deg, elevation_deg, roll_deg: body heading and camera angles.
        fill: body extent / image side.
        offset: ``(2,)`` shift of the body centre from the image centre, fraction of the side.
        light_direction: ``(3,)`` unit vector towards the light, camera frame.
        colour_scale: ``(24, 1)`` per-part albedo factors.
        background_seed, noise_seed: seeds of the background and the sensor noise.
    """

    world_pose: np.ndarray
    betas: np.ndarray
    yaw_deg: float
    elevation_deg: float
    roll_deg: float
    fill: float
    offset: np.ndarray
    light_direction: np.ndarray
    colour_scale: np.ndarray
    background_seed: int
    noise_seed: int


@dataclass
class SyntheticSample:
    """One rendered image and its labels (float32 arrays; pixels are continuous coordinates
    with the centre of pixel ``(row i, column j)`` at ``(j + 0.5, i + 0.5)``).

    Attributes:
        image: ``(S, S, 3)`` uint8 RGB.
        mask: ``(S, S)`` bool, where the body is visible.
        body_pose: ``(72,)`` axis-angle, global orientation in the camera frame first.
        betas: ``(10,)``.
        camera_translation: ``(3,)`` metres; camera-space vertices are the body model's
            vertices (posed with ``body_pose``, ``betas``) plus this.
        focal_length: pixels (principal point at the image centre).
        keypoints_2d: ``(44, 3)`` projected joints ``(x, y, conf)`` in pixels, conf 1 inside
            the image.
        keypoints_3d: ``(44, 4)`` camera-axes joints relative to the pelvis (joint 39), metres,
            conf 1 except OpenPose joints 1-14 (0, as the format prescribes).
        center: ``(2,)`` box centre, pixels.
        scale: box side / 200.
        scene: the draws it was made from.
    """

    image: np.ndarray
    mask: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    camera_translation: np.ndarray
    focal_length: float
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    center: np.ndarray
    scale: float
    scene: SceneParameters = field(repr=False)


def face_part_labels(skinning_weights: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Body part of every face: the joint with the largest summed skinning weight of its
    three vertices.

    Arguments:
        skinning_weights: ``(V, J)`` linear-blend-skinning weights.
        faces: ``(F, 3)`` vertex indices.

    Returns:
        ``(F,)`` long joint indices.

    Example:
        >>> weights = torch.tensor([[1.0, 0.0], [0.6, 0.4], [0.0, 1.0], [0.1, 0.9]])
        >>> face_part_labels(weights, torch.tensor([[0, 1, 2], [1, 2, 3]])).tolist()
        [0, 1]
    """
    if skinning_weights.ndim != 2:
        raise ValueError(
            f"skinning_weights must have shape (V, J), got {tuple(skinning_weights.shape)}"
        )
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {tuple(faces.shape)}")
    return skinning_weights[faces.long()].sum(dim=1).argmax(dim=-1)


def focal_length_for(image_size: int) -> float:
    """Focal length in pixels of an ``image_size`` frame: ProHMR's camera scaled.

    Example:
        >>> focal_length_for(224) == FOCAL_LENGTH
        True
    """
    return FOCAL_LENGTH * image_size / IMAGE_SIZE


def scene_rng(seed: int, split: str, domain: str, index: int) -> np.random.Generator:
    """The generator of image ``index``: one stream per ``(seed, split, domain, index)``.

    Split and domain enter by a CRC-32 of their names, stable across processes and versions.
    """
    names = (zlib.crc32(split.encode()), zlib.crc32(domain.encode()))
    return np.random.default_rng([int(seed), *names, int(index)])


def _rotation_x(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rotation_y(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rotation_z(degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# World (y up, body facing +z) to camera (y down, looking down +z, so facing the camera
# means facing -z): 180 degrees about x.
_WORLD_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


def _world_to_camera(scene: SceneParameters) -> np.ndarray:
    """``(3, 3)``: heading about the world vertical, then the camera's elevation and roll."""
    return (
        _rotation_z(scene.roll_deg)
        @ _rotation_x(scene.elevation_deg)
        @ _WORLD_TO_CAMERA
        @ _rotation_y(scene.yaw_deg)
    )


def draw_scene(
    rng: np.random.Generator, style: DomainStyle, pose_bank: np.ndarray | None
) -> SceneParameters:
    """Draw every random choice of one image.

    Arguments:
        rng: the image's generator (:func:`scene_rng`).
        style: the domain.
        pose_bank: ``(M, 72)`` world-frame poses to pick from; None draws :func:`random_pose`.

    Returns:
        The :class:`SceneParameters`.
    """
    if pose_bank is None:
        pose = random_pose(1, rng)[0]
    else:
        pose = np.asarray(pose_bank[rng.integers(len(pose_bank))], dtype=np.float64)
    if rng.random() < MIRROR_PROBABILITY:
        pose = flip_smpl_pose(pose)
    betas = np.clip(rng.standard_normal(NUM_BETAS), -BETA_LIMIT, BETA_LIMIT)
    if style.yaw_std_deg is None:
        yaw = rng.uniform(-180.0, 180.0)
    else:
        yaw = float(np.clip(rng.normal(0.0, style.yaw_std_deg), -180.0, 180.0))
    elevation = rng.uniform(*style.elevation_deg)
    roll = rng.normal(0.0, style.roll_std_deg) if style.roll_std_deg > 0 else 0.0
    fill = rng.uniform(*style.fill)
    offset = rng.uniform(-style.offset, style.offset, size=2)
    azimuth = np.radians(rng.uniform(*style.light_azimuth_deg))
    light_elevation = np.radians(rng.uniform(*style.light_elevation_deg))
    light = np.array([
        np.sin(azimuth) * np.cos(light_elevation),
        -np.sin(light_elevation),
        -np.cos(azimuth) * np.cos(light_elevation),
    ])
    jitter = style.colour_jitter
    colour_scale = rng.uniform(1.0 - jitter, 1.0 + jitter, size=(NUM_SMPL_JOINTS, 1))
    background_seed, noise_seed = (int(value) for value in rng.integers(0, 2**63 - 1, size=2))
    return SceneParameters(
        world_pose=pose, betas=betas, yaw_deg=float(yaw), elevation_deg=float(elevation),
        roll_deg=float(roll), fill=float(fill), offset=offset, light_direction=light,
        colour_scale=colour_scale, background_seed=background_seed, noise_seed=noise_seed,
    )


# Grass, earth, gravel, moss.
_GROUND_COLOURS = np.array(
    [[0.30, 0.45, 0.15], [0.45, 0.36, 0.22], [0.55, 0.52, 0.45], [0.25, 0.35, 0.20]]
)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> torch.Tensor:
    """``(1, size, size)`` bilinear value noise from a ``cells x cells`` grid in [-1, 1]."""
    grid = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(1, 1, cells, cells)))
    return F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[0]


def draw_background(style: DomainStyle, image_size: int, seed: int) -> torch.Tensor:
    """A background image of the domain: ``(3, S, S)`` float64 in ``[0, 1]``.

    ``"gradient"``: a plain vertical gradient between two light, slightly tinted greys.
    ``"outdoor"``: a sky gradient with soft clouds over a horizon, textured ground (several
    octaves of value noise in an earthy or grassy colour), and a few textured upright blocks
    (walls, trees) standing on the horizon.

    Arguments:
        style: the domain.
        image_size: side ``S`` in pixels.
        seed: the background's seed.
    """
    _check_int(image_size, "image_size", _MIN_IMAGE_SIZE, _MAX_IMAGE_SIZE)
    rng = np.random.default_rng(seed)
    size = image_size
    rows = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    if style.background == "gradient":
        top = rng.uniform(0.62, 0.9) + rng.uniform(-0.05, 0.05, size=3)
        bottom = top * rng.uniform(0.65, 0.92)
        colours = torch.from_numpy(np.stack([top, bottom]))
        ramp = rows[None, :, None]
        image = colours[0, :, None, None] * (1 - ramp) + colours[1, :, None, None] * ramp
        return image.expand(3, size, size).clamp(0.0, 1.0).contiguous()

    horizon = rng.uniform(0.3, 0.65)
    sky_top = np.array([rng.uniform(0.25, 0.5), rng.uniform(0.45, 0.7), rng.uniform(0.75, 1.0)])
    sky_low = np.clip(sky_top + rng.uniform(0.1, 0.3), 0.0, 1.0)
    sky_ramp = (rows / horizon).clamp(0.0, 1.0)[None, :, None]
    sky = (torch.from_numpy(sky_top)[:, None, None] * (1 - sky_ramp)
           + torch.from_numpy(sky_low)[:, None, None] * sky_ramp).expand(3, size, size)
    clouds = _smooth_noise(rng, size, 4).clamp_min(0.0) * rng.uniform(0.2, 0.5)
    sky = sky + clouds

    ground_colour = _GROUND_COLOURS[rng.integers(len(_GROUND_COLOURS))] * rng.uniform(0.8, 1.2, 3)
    texture = sum(
        amplitude * _smooth_noise(rng, size, cells)
        for cells, amplitude in ((6, 0.18), (24, 0.12), (max(size // 2, 2), 0.10))
    )
    ground = torch.from_numpy(ground_colour)[:, None, None] * (1.0 + texture)

    image = torch.where(rows[None, :, None] < horizon, sky, ground)
    columns = torch.arange(size, dtype=torch.float64)
    for _ in range(int(rng.integers(2, 6))):
        width = rng.uniform(0.06, 0.3) * size
        left = rng.uniform(-0.1, 1.0) * size
        height = rng.uniform(0.1, 0.45)
        bottom = horizon + rng.uniform(0.0, 0.08)
        colour = rng.uniform(0.15, 0.75, size=3)
        block_texture = 1.0 + 0.25 * _smooth_noise(rng, size, int(rng.integers(8, 32)))
        block = torch.from_numpy(colour)[:, None, None] * block_texture
        inside = ((columns >= left) & (columns < left + width))[None, None, :] & (
            (rows >= bottom - height) & (rows < bottom)
        )[None, :, None]
        image = torch.where(inside, block, image)
    return image.clamp(0.0, 1.0)


class SyntheticRenderer:
    """Poses, places, colours and renders scenes with one body model.

    Runs on the body model's device (CPU or CUDA); samples come back as numpy arrays.

    Arguments:
        image_size: side ``S`` of the square images in pixels.
        domain: a key of :data:`DOMAINS`.
        body_model: a :class:`prohmr.body.model.BodyModel`; None builds the default one
            (float32, CPU).
    """

    def __init__(
        self, image_size: int, domain: str, body_model: torch.nn.Module | None = None
    ) -> None:
        from prohmr.body.model import create_body_model

        _check_int(image_size, "image_size", _MIN_IMAGE_SIZE, _MAX_IMAGE_SIZE)
        _check_choice(domain, "domain", tuple(DOMAINS))
        self.image_size = int(image_size)
        self.style = DOMAINS[domain]
        self.body_model = body_model if body_model is not None else create_body_model()
        reference = self.body_model.layer.shapedirs
        self.dtype, self.device = reference.dtype, reference.device
        self.faces = self.body_model.faces
        self.part_of_face = face_part_labels(self.body_model.layer.lbs_weights, self.faces)
        self.focal_length = focal_length_for(self.image_size)
        self.palette = torch.tensor(self.style.palette, dtype=torch.float64)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=self.dtype, device=self.device)

    def render(self, scenes: Sequence[SceneParameters]) -> list[SyntheticSample]:
        """Render a batch of scenes and compute their labels.

        Arguments:
            scenes: the draws (:func:`draw_scene`), one per image.

        Returns:
            One :class:`SyntheticSample` per scene, in order.
        """
        if not scenes:
            return []
        size, focal = self.image_size, self.focal_length
        world_to_camera = np.stack([_world_to_camera(scene) for scene in scenes])
        world_pose = np.stack([scene.world_pose for scene in scenes])
        world_pose = world_pose.reshape(-1, NUM_SMPL_JOINTS, 3)
        root = axis_angle_to_matrix(torch.from_numpy(world_pose[:, 0])).numpy()
        camera_orient = matrix_to_axis_angle(torch.from_numpy(world_to_camera @ root)).numpy()
        # Labels are rounded to float32 first and the image is made from the rounded values,
        # so posing the body from the stored labels reproduces it.
        body_pose = np.concatenate([camera_orient[:, None], world_pose[:, 1:]], axis=1)
        body_pose = body_pose.reshape(len(scenes), -1).astype(np.float32)
        betas = np.stack([scene.betas for scene in scenes]).astype(np.float32)
        colour_scale = torch.from_numpy(np.stack([scene.colour_scale for scene in scenes]))
        face_colours = (self.palette[None] * colour_scale).clamp(0.0, 1.0)[:, self.part_of_face]

        with torch.no_grad():
            rotations = axis_angle_to_matrix(self._tensor(body_pose).view(-1, NUM_SMPL_JOINTS, 3))
            out = self.body_model(rotations[:, :1], rotations[:, 1:], self._tensor(betas))
            vertices, joints = out.vertices, out.joints
            translation = self._tensor(self._place(vertices, scenes))
            keypoints_xy = perspective_projection(joints, translation, focal, size / 2.0)
            projected = perspective_projection(vertices, translation, focal, size / 2.0)
            backgrounds = torch.stack(
                [draw_background(self.style, size, scene.background_seed) for scene in scenes]
            )
            lights = np.stack([scene.light_direction for scene in scenes])
            rendered = render_mesh(
                vertices + translation[:, None], self.faces, (size, size), focal,
                face_colors=self._tensor(face_colours), light_direction=self._tensor(lights),
                background=self._tensor(backgrounds), ambient=self.style.ambient,
                diffuse=self.style.diffuse, smooth_shading=True,
            )
        images = rendered.image.permute(0, 2, 3, 1).double().cpu().numpy()
        masks = rendered.mask.cpu().numpy()
        keypoints_xy = keypoints_xy.double().cpu().numpy()
        relative = (joints - joints[:, PELVIS_INDEX : PELVIS_INDEX + 1]).double().cpu().numpy()
        lower = projected.amin(dim=1).double().cpu().numpy()
        upper = projected.amax(dim=1).double().cpu().numpy()
        translation = translation.cpu().numpy().astype(np.float32)
        confidence_3d = np.ones((NUM_PROHMR_JOINTS, 1))
        confidence_3d[list(ZEROED_BODY25_3D_JOINTS)] = 0.0

        samples = []
        for k, scene in enumerate(scenes):
            image = images[k]
            if self.style.noise_std > 0:
                noise_rng = np.random.default_rng(scene.noise_seed)
                image = image + noise_rng.normal(0.0, self.style.noise_std, size=image.shape)
            inside = np.all((keypoints_xy[k] >= 0.0) & (keypoints_xy[k] < size), axis=1)
            keypoints_2d = np.concatenate([keypoints_xy[k], inside[:, None]], axis=1)
            samples.append(SyntheticSample(
                image=np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8),
                mask=masks[k],
                body_pose=body_pose[k],
                betas=betas[k],
                camera_translation=translation[k],
                focal_length=float(focal),
                keypoints_2d=keypoints_2d.astype(np.float32),
                keypoints_3d=np.concatenate([relative[k], confidence_3d], 1).astype(np.float32),
                center=((lower[k] + upper[k]) / 2.0).astype(np.float32),
                scale=float(BOX_MARGIN * np.max(upper[k] - lower[k]) / BOX_SCALE_UNIT),
                scene=scene,
            ))
        return samples

    def _place(self, vertices: torch.Tensor, scenes: Sequence[SceneParameters]) -> np.ndarray:
        """``(B, 3)`` float64 camera translations: the body's larger extent spans ``fill`` of
        the image, its bounding-box centre sits ``offset`` from the image centre.

        Uses the orthographic approximation (the camera is tens of metres away), so fill and
        offset hold to a fraction of a pixel; the labels use the exact projection.
        """
        vertices = vertices.double().cpu().numpy()
        lower, upper = vertices.min(axis=1), vertices.max(axis=1)
        extent = (upper - lower)[:, :2].max(axis=1)
        centre = (upper + lower) / 2.0
        fill = np.array([scene.fill for scene in scenes])
        offset = np.stack([scene.offset for scene in scenes])
        depth = self.focal_length * extent / (fill * self.image_size)
        xy = offset * self.image_size * depth[:, None] / self.focal_length - centre[:, :2]
        return np.concatenate([xy, (depth - centre[:, 2])[:, None]], axis=1)


def _check_int(value: Any, name: str, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
        high is not None and value > high
    ):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an int {bounds}, got {value!r}")


def _check_choice(value: Any, name: str, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def load_pose_source(
    pose_source: str | np.ndarray,
    split: str,
    data_root: str | Path = DEFAULT_DATA_ROOT,
    fps: float = 10.0,
    body_model: torch.nn.Module | None = None,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Resolve a pose source into a bank (or None for :func:`random_pose`) and a description.

    Arguments:
        pose_source: ``"mocap"`` (HDM05; training splits leave out :data:`HELD_OUT_ACTORS`,
            validation uses only them), ``"random"``, ``"auto"`` (mocap if
            ``data_root/hdm05`` exists, else random, with a warning), or an ``(M, 72)`` array
            of world-frame poses (y up, facing +z).
        split: one of :data:`SPLITS`.
        data_root: the open-data folder.
        fps: mocap frames per second kept.
        body_model: the body the mocap is retargeted to.

    Returns:
        ``(bank or None, description)``; the description goes into the render settings.
    """
    _check_choice(split, "split", SPLITS)
    if isinstance(pose_source, np.ndarray):
        if pose_source.shape[1:] != (3 * NUM_SMPL_JOINTS,) or not len(pose_source):
            raise ValueError(
                f"pose_source array must have shape (M, 72) with M > 0, got {pose_source.shape}"
            )
        if not np.isfinite(pose_source).all():
            raise ValueError("pose_source array contains NaN or infinite values")
        return pose_source.astype(np.float64), {"kind": "array", "num_poses": len(pose_source)}
    if not isinstance(pose_source, str) or pose_source not in POSE_SOURCES:
        raise ValueError(
            f"pose_source must be one of {POSE_SOURCES} or an (M, 72) array, got {pose_source!r}"
        )
    if pose_source == "auto":
        if (Path(data_root).expanduser() / "hdm05").is_dir():
            pose_source = "mocap"
        else:
            logger.warning("no mocap under %s; drawing random poses instead", data_root)
            pose_source = "random"
    if pose_source == "random":
        return None, {"kind": "random"}
    if split == "train":
        selection: dict[str, Any] = {"exclude_actors": list(HELD_OUT_ACTORS)}
    else:
        selection = {"actors": list(HELD_OUT_ACTORS)}
    bank = mocap_pose_bank(data_root, fps=fps, body_model=body_model, **selection)
    description = {"kind": "mocap", "dataset": "HDM05", "fps": float(fps),
                   "num_poses": len(bank), "retarget": "swing-only", **selection}
    return bank, description


def generate_samples(
    indices: Sequence[int],
    *,
    seed: int = 0,
    split: str = "train",
    domain: str = "studio",
    image_size: int = DEFAULT_IMAGE_SIZE,
    pose_bank: np.ndarray | None = None,
    renderer: SyntheticRenderer | None = None,
) -> list[SyntheticSample]:
    """Render the images ``indices`` of a dataset in memory (what :func:`synthesize_dataset`
    writes for those rows, given the same pose bank).

    Renders with one torch thread (restored afterwards): on small CPUs several threads are
    several times slower for this work.

    Arguments:
        indices: image indices.
        seed, split, domain, image_size: as in :func:`synthesize_dataset`.
        pose_bank: ``(M, 72)`` world-frame poses; None draws random poses.
        renderer: reuse a renderer (its image size and domain must match).

    Returns:
        One :class:`SyntheticSample` per index.

    Example:
        >>> sample = generate_samples([0], image_size=32)[0]
        >>> sample.image.shape, sample.keypoints_2d.shape, bool(sample.mask.any())
        ((32, 32, 3), (44, 3), True)
    """
    _check_choice(split, "split", SPLITS)
    _check_choice(domain, "domain", tuple(DOMAINS))
    if renderer is None:
        renderer = SyntheticRenderer(image_size, domain)
    elif renderer.image_size != image_size or renderer.style.name != domain:
        raise ValueError(
            f"renderer renders {renderer.style.name!r} at {renderer.image_size} px, asked for "
            f"{domain!r} at {image_size} px"
        )
    scenes = [
        draw_scene(scene_rng(seed, split, domain, index), renderer.style, pose_bank)
        for index in indices
    ]
    samples: list[SyntheticSample] = []
    with single_thread():
        for start in range(0, len(scenes), CHUNK_SIZE):
            samples.extend(renderer.render(scenes[start : start + CHUNK_SIZE]))
    return samples


_LABEL_KEYS = ("center", "scale", "body_pose", "betas", "keypoints_2d", "keypoints_3d",
               "camera_translation", "focal_length")


class _ChunkWriter:
    """Renders chunks of indices and writes their images; one per worker process."""

    def __init__(
        self,
        settings: dict[str, Any],
        pose_bank: np.ndarray | None,
        renderer: SyntheticRenderer | None = None,
    ) -> None:
        from prohmr.body.model import create_body_model

        self.settings = settings
        self.pose_bank = pose_bank
        if renderer is None:
            body_model = create_body_model(settings["body_model_path"])
            renderer = SyntheticRenderer(settings["image_size"], settings["domain"], body_model)
        self.renderer = renderer

    def __call__(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        settings = self.settings
        samples = generate_samples(
            indices, seed=settings["seed"], split=settings["split"], domain=settings["domain"],
            image_size=settings["image_size"], pose_bank=self.pose_bank, renderer=self.renderer,
        )
        image_root = Path(settings["out_dir"]) / IMAGE_DIRNAME
        for index, sample in zip(indices, samples):
            name = _image_name(settings["split"], index, settings["image_format"])
            _save_image(sample.image, image_root / name)
        return {
            key: np.stack([np.asarray(getattr(sample, key)) for sample in samples])
            for key in _LABEL_KEYS
        }


def _save_image(pixels: np.ndarray, path: Path) -> None:
    image = Image.fromarray(pixels)
    if path.suffix == ".jpg":
        image.save(path, quality=JPEG_QUALITY, subsampling=0)
    else:
        image.save(path)


def _image_name(split: str, index: int, image_format: str) -> str:
    return f"{split}/{index:06d}.{image_format}"


_WORKER: _ChunkWriter | None = None


def _init_worker(settings: dict[str, Any], pose_bank: np.ndarray | None) -> None:
    global _WORKER
    torch.set_num_threads(1)
    _WORKER = _ChunkWriter(settings, pose_bank)


def _run_chunk(indices: Sequence[int]) -> dict[str, np.ndarray]:
    if _WORKER is None:
        raise RuntimeError("synthetic worker process was not initialised")
    return _WORKER(indices)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but byte-reproducible (fixed member timestamps)."""
    temporary = path.with_name(f".{path.name}.partial")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_NPZ_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
    temporary.replace(path)


def synthesize_dataset(
    out_dir: str | Path,
    num_images: int,
    split: str = "train",
    domain: str = "studio",
    seed: int = 0,
    image_size: int = DEFAULT_IMAGE_SIZE,
    pose_source: str | np.ndarray = "auto",
    workers: int = 1,
    *,
    data_root: str | Path = DEFAULT_DATA_ROOT,
    mocap_fps: float = 10.0,
    image_format: str = "jpg",
    body_model_path: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Render a synthetic dataset in the ``.npz`` format of :class:`prohmr.data.ImageDataset`.

    Writes ``out_dir/<split>.npz`` (read it with
    ``ImageDataset(npz, image_root=out_dir / "images")``), the images
    ``out_dir/images/<split>/<index:06d>.<image_format>`` and ``out_dir/<split>.json`` (the
    render settings). Keys of the ``.npz`` (``N = num_images``): ``imgname``, ``center``,
    ``scale``, ``body_pose`` (global orientation in the camera frame), ``has_body_pose``,
    ``betas``, ``has_betas``, ``body_keypoints_2d``, ``extra_keypoints_2d`` (image pixels,
    conf 1 inside the image), ``body_keypoints_3d``, ``extra_keypoints_3d`` (camera axes,
    metres, relative to the pelvis joint 39; conf of OpenPose joints 1-14 zero), ``gender``
    (``"n"``), plus ``camera_translation (N, 3)``, ``focal_length (N,)`` and
    ``render_settings`` (a JSON string).

    Arguments:
        out_dir: output folder (created if missing).
        num_images: number of images (>= 1).
        split: ``"train"`` or ``"val"``: separate random streams; with mocap, validation
            poses come only from the held-out actor(s) :data:`HELD_OUT_ACTORS`.
        domain: a key of :data:`DOMAINS` (``"studio"`` or ``"outdoor"``).
        seed: the dataset's seed; the output is a deterministic function of the arguments
            (``workers`` and ``progress`` aside).
        image_size: side of the square images in pixels.
        pose_source: ``"auto"``, ``"mocap"``, ``"random"`` or an ``(M, 72)`` pose array
            (:func:`load_pose_source`).
        workers: processes rendering in parallel (each pinned to one torch thread); 1 renders
            in this process (with one torch thread meanwhile).
        data_root: the open-data folder holding ``hdm05/``.
        mocap_fps: mocap frames per second in the pose bank.
        image_format: ``"jpg"`` or ``"png"``.
        body_model_path: the body model (None: ``$PROHMR_SMPL_DIR`` or the procedural default).
        overwrite: replace an existing ``<split>.npz``.
        progress: show a progress bar.

    Returns:
        The path of the ``.npz`` file.

    Raises:
        ValueError: a bad argument. FileExistsError: the ``.npz`` exists and ``overwrite`` is
        False. FileNotFoundError: ``pose_source="mocap"`` without the data.
    """
    _check_int(num_images, "num_images", 1)
    _check_choice(split, "split", SPLITS)
    _check_choice(domain, "domain", tuple(DOMAINS))
    _check_int(seed, "seed", 0)
    _check_int(image_size, "image_size", _MIN_IMAGE_SIZE, _MAX_IMAGE_SIZE)
    _check_int(workers, "workers", 1)
    _check_choice(image_format, "image_format", IMAGE_FORMATS)
    out = Path(out_dir).expanduser()
    npz_path = out / f"{split}.npz"
    if npz_path.exists() and not overwrite:
        raise FileExistsError(f"{npz_path} exists; pass overwrite=True to replace it")

    from prohmr.body.model import create_body_model

    start = time.perf_counter()
    with single_thread():
        body_model = create_body_model(body_model_path)
        pose_bank, pose_description = load_pose_source(
            pose_source, split, data_root, mocap_fps, body_model
        )
    (out / IMAGE_DIRNAME / split).mkdir(parents=True, exist_ok=True)
    style = DOMAINS[domain]
    render_settings = {
        "generator": "prohmr.data.synthetic",
        "generator_version": SYNTHETIC_VERSION,
        "domain": domain,
        "domain_style": {key: value for key, value in asdict(style).items() if key != "name"},
        "split": split,
        "seed": int(seed),
        "num_images": int(num_images),
        "image_size": int(image_size),
        "focal_length": focal_length_for(int(image_size)),
        "principal_point": [image_size / 2.0, image_size / 2.0],
        "camera": "x right, y down, z forward; pixel (row i, column j) centred at "
                  "(j + 0.5, i + 0.5)",
        "image_format": image_format,
        "image_root": IMAGE_DIRNAME,
        "pose_source": pose_description,
        "body_model": str(body_model.model_file),
        "betas": f"N(0, 1) clipped to +-{BETA_LIMIT}",
        "mirror_probability": MIRROR_PROBABILITY,
        "box_margin": BOX_MARGIN,
        "keypoints_2d": "44 joints projected, image pixels; conf 1 inside the image",
        "keypoints_3d": "44 joints, camera axes, metres, relative to the pelvis (joint 39)",
        "body_pose": "axis-angle; global orientation in the camera frame",
    }
    settings = {
        "out_dir": str(out), "seed": int(seed), "split": split, "domain": domain,
        "image_size": int(image_size), "image_format": image_format,
        "body_model_path": None if body_model_path is None else str(body_model_path),
    }
    chunks = [
        list(range(begin, min(begin + CHUNK_SIZE, num_images)))
        for begin in range(0, num_images, CHUNK_SIZE)
    ]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=num_images, desc=f"synthesize {domain}/{split}", unit="img")
    results: list[dict[str, np.ndarray]] = []
    if workers == 1:
        with single_thread():
            renderer = SyntheticRenderer(int(image_size), domain, body_model)
            writer = _ChunkWriter(settings, pose_bank, renderer)
            for chunk in chunks:
                results.append(writer(chunk))
                if bar is not None:
                    bar.update(len(chunk))
    else:
        # Spawned, not forked: a fork of a process whose torch already ran threads can hang.
        context = multiprocessing.get_context("spawn")
        with context.Pool(
            int(workers), initializer=_init_worker, initargs=(settings, pose_bank)
        ) as pool:
            for result in pool.imap(_run_chunk, chunks):
                results.append(result)
                if bar is not None:
                    bar.update(len(result["scale"]))
    if bar is not None:
        bar.close()

    labels = {key: np.concatenate([result[key] for result in results]) for key in _LABEL_KEYS}
    keypoints_2d, keypoints_3d = labels["keypoints_2d"], labels["keypoints_3d"]
    arrays = {
        "imgname": np.array([_image_name(split, i, image_format) for i in range(num_images)]),
        "center": labels["center"],
        "scale": labels["scale"].astype(np.float32),
        "body_pose": labels["body_pose"],
        "has_body_pose": np.ones(num_images, dtype=np.float32),
        "betas": labels["betas"],
        "has_betas": np.ones(num_images, dtype=np.float32),
        "body_keypoints_2d": keypoints_2d[:, :25],
        "extra_keypoints_2d": keypoints_2d[:, 25:],
        "body_keypoints_3d": keypoints_3d[:, :25],
        "extra_keypoints_3d": keypoints_3d[:, 25:],
        "gender": np.array(["n"] * num_images),
        "camera_translation": labels["camera_translation"],
        "focal_length": labels["focal_length"].astype(np.float32),
        "render_settings": np.array(json.dumps(render_settings, sort_keys=True)),
    }
    _write_npz(npz_path, arrays)
    (out / f"{split}.json").write_text(json.dumps(render_settings, indent=2, sort_keys=True) + "\n")
    elapsed = time.perf_counter() - start
    logger.info(
        "wrote %d %s/%s images (%d px) to %s in %.1f s (%.1f images/s, %d workers)",
        num_images, domain, split, image_size, out, elapsed, num_images / elapsed, workers,
    )
    return npz_path
