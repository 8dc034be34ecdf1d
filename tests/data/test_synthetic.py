"""The synthetic image world: format, label consistency, flips, determinism and domains."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from prohmr.body.model import create_body_model
from prohmr.constants import FOCAL_LENGTH, IMAGE_SIZE
from prohmr.data import synthetic
from prohmr.data.augmentation import flip_keypoints, flip_smpl_pose
from prohmr.data.image_dataset import ImageDataset, load_npz
from prohmr.data.pose_sources import mocap_pose_bank, random_pose
from prohmr.data.synthetic import (
    BOX_MARGIN,
    DOMAINS,
    SYNTHETIC_VERSION,
    SyntheticRenderer,
    draw_background,
    face_part_labels,
    generate_samples,
    load_pose_source,
    synthesize_dataset,
)
from prohmr.rendering import render_mesh

DATA_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SIZE = 96
NUM = 8
SEED = 3
# OpenPose / extra joints that lie inside the body volume, hence inside its silhouette.
INTERIOR_JOINTS = {"Neck": 1, "RShoulder": 2, "LShoulder": 5, "MidHip": 8, "RKnee": 10,
                   "LKnee": 13, "R_Hip": 27, "L_Hip": 28, "Pelvis_MPII": 39}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Rendering on one torch thread is several times faster on small CPUs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def body():
    return create_body_model()


@pytest.fixture(scope="module")
def renderers(body):
    return {domain: SyntheticRenderer(SIZE, domain, body) for domain in DOMAINS}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, body):
    """One tiny PNG dataset per domain (random poses: no dependence on the open data)."""
    return {
        domain: synthesize_dataset(tmp_path_factory.mktemp(domain), NUM, domain=domain,
                                   seed=SEED, image_size=SIZE, pose_source="random",
                                   image_format="png")
        for domain in DOMAINS
    }


@pytest.fixture(scope="module")
def samples(renderers):
    return {
        domain: generate_samples(range(NUM), seed=SEED, domain=domain, image_size=SIZE,
                                 renderer=renderers[domain])
        for domain in DOMAINS
    }


def _pose_from_labels(body, pose: np.ndarray, betas: np.ndarray):
    """Pose the body from axis-angle labels, converted by scipy (independently of prohmr)."""
    rotvecs = pose.reshape(-1, 3).astype(np.float64)
    rotations = torch.from_numpy(Rotation.from_rotvec(rotvecs).as_matrix()).float()
    rotations = rotations.view(-1, 24, 3, 3)
    return body(rotations[:, :1], rotations[:, 1:], torch.from_numpy(betas).float())


def _project(points: np.ndarray, translation: np.ndarray, focal: np.ndarray) -> np.ndarray:
    """Pinhole projection written out: ``f * (X + t) / (Z + t_z) + S / 2``."""
    camera = points + translation[:, None]
    return focal[:, None, None] * camera[..., :2] / camera[..., 2:] + SIZE / 2.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _keypoints(data: dict[str, np.ndarray], dimension: str) -> np.ndarray:
    return np.concatenate(
        [data[f"body_keypoints_{dimension}"], data[f"extra_keypoints_{dimension}"]], axis=1
    )


def test_npz_loads_with_image_dataset(datasets):
    for npz in datasets.values():
        dataset = ImageDataset(npz, image_root=npz.parent / "images", train=False)
        assert len(dataset) == NUM
        item = dataset[NUM - 1]
        assert item["img"].shape == (3, IMAGE_SIZE, IMAGE_SIZE)
        assert item["keypoints_2d"].shape == (44, 3) and item["keypoints_3d"].shape == (44, 4)
        assert item["smpl_params"]["global_orient"].shape == (3,)
        assert item["smpl_params"]["body_pose"].shape == (69,)
        assert item["smpl_params"]["betas"].shape == (10,)
        assert all(item["has_smpl_params"].values())
        assert item["img_size"].tolist() == [SIZE, SIZE]
        # The whole body is in the image and inside the crop box.
        assert (item["keypoints_2d"][:, 2] == 1).all()
        assert item["keypoints_2d"][:, :2].abs().max() < 0.5
        assert (item["keypoints_3d"][1:15, 3] == 0).all()
        assert (item["keypoints_3d"][15:, 3] == 1).all() and (item["keypoints_3d"][0, 3] == 1)
        assert item["gender"] == -1


def test_keypoints_are_the_projected_joints_of_the_labels(body, datasets):
    for npz in datasets.values():
        data = load_npz(npz)
        translation = data["camera_translation"].astype(np.float64)
        focal = data["focal_length"].astype(np.float64)
        out = _pose_from_labels(body, data["body_pose"], data["betas"])
        joints = out.joints.double().numpy()
        projected = _project(joints, translation, focal)
        assert np.abs(projected - _keypoints(data, "2d")[..., :2]).max() < 0.5
        np.testing.assert_allclose(projected, _keypoints(data, "2d")[..., :2], atol=0.02)
        np.testing.assert_allclose(_keypoints(data, "3d")[..., :3], joints - joints[:, 39:40],
                                   atol=1e-4)
        np.testing.assert_allclose(data["focal_length"], FOCAL_LENGTH * SIZE / IMAGE_SIZE)
        # The box: centred on the body, BOX_MARGIN times its larger projected extent.
        vertices = _project(out.vertices.double().numpy(), translation, focal)
        lower, upper = vertices.min(axis=1), vertices.max(axis=1)
        np.testing.assert_allclose(data["center"], (lower + upper) / 2, atol=0.02)
        np.testing.assert_allclose(data["scale"] * 200, BOX_MARGIN * (upper - lower).max(axis=1),
                                   rtol=1e-4)


def test_images_are_the_rendered_labels(body, datasets, samples):
    for domain, npz in datasets.items():
        data = load_npz(npz)
        for index, sample in enumerate(samples[domain]):
            stored = Image.open(npz.parent / "images" / str(data["imgname"][index]))
            np.testing.assert_array_equal(np.asarray(stored), sample.image)
        # Re-rendering the body posed from the stored labels gives the same silhouette.
        out = _pose_from_labels(body, data["body_pose"], data["betas"])
        vertices = out.vertices + torch.from_numpy(data["camera_translation"])[:, None]
        focal = float(data["focal_length"][0])
        mask = render_mesh(vertices, body.faces, (SIZE, SIZE), focal).mask.numpy()
        for index, sample in enumerate(samples[domain]):
            assert _iou(mask[index], sample.mask) > 0.995
            assert 0.03 < sample.mask.mean() < 0.3


def test_interior_joints_fall_inside_the_silhouette(samples):
    for domain_samples in samples.values():
        for sample in domain_samples:
            for name, joint in INTERIOR_JOINTS.items():
                x, y = sample.keypoints_2d[joint, :2]
                assert sample.mask[int(y), int(x)], (name, x, y)


def test_global_orientation_is_in_the_camera_frame(samples):
    # Studio: cameras at about body height, upright random poses. The body's up axis (+y in
    # SMPL) must point up in the image (-y), i.e. about 180 degrees about x when frontal.
    for sample in samples["studio"]:
        up = Rotation.from_rotvec(sample.body_pose[:3]).apply([0.0, 1.0, 0.0])
        assert up[1] < -0.85
        head, ankles = sample.keypoints_2d[43, 1], sample.keypoints_2d[[25, 30], 1]
        assert (head < ankles).all()
    upright = np.zeros((1, 72))
    frontal = generate_samples([0], domain="studio", image_size=SIZE, pose_bank=upright)[0]
    elevation, yaw = frontal.scene.elevation_deg, frontal.scene.yaw_deg
    expected = Rotation.from_euler("x", 180 + elevation, degrees=True) * Rotation.from_euler(
        "y", yaw, degrees=True
    )
    assert (Rotation.from_rotvec(frontal.body_pose[:3]) * expected.inv()).magnitude() < 1e-5


def test_flipped_sample_matches_the_rendered_mirror(body, samples):
    # The procedural body is left/right symmetric (vertices exactly, skinning weights to
    # 0.007), so the flipped pose seen through the mirrored camera renders the mirror image
    # (measured: IoU 1.0, keypoints within 0.002 px).
    for domain_samples in samples.values():
        for sample in domain_samples[:4]:
            pose = flip_smpl_pose(sample.body_pose.astype(np.float64))
            translation = sample.camera_translation.astype(np.float64) * [-1.0, 1.0, 1.0]
            out = _pose_from_labels(body, pose[None], sample.betas[None])
            vertices = out.vertices + torch.from_numpy(translation).float()
            mask = render_mesh(vertices, body.faces, (SIZE, SIZE), sample.focal_length).mask
            assert _iou(mask[0].numpy(), sample.mask[:, ::-1]) > 0.97
            focal = np.array([sample.focal_length])
            projected = _project(out.joints.double().numpy(), translation[None], focal)[0]
            flipped = flip_keypoints(sample.keypoints_2d.astype(np.float64), image_width=SIZE)
            assert np.abs(projected - flipped[:, :2]).max() < 1.0
            # A wrong flip (mirror without swapping sides) is caught by the same check.
            unswapped = SIZE - sample.keypoints_2d[:, 0].astype(np.float64)
            assert np.abs(projected[:, 0] - unswapped).max() > 2.0


def _same_files(first: Path, second: Path) -> bool:
    names = load_npz(first)["imgname"]
    return first.read_bytes() == second.read_bytes() and all(
        (first.parent / "images" / str(name)).read_bytes()
        == (second.parent / "images" / str(name)).read_bytes()
        for name in names
    )


def test_determinism_and_seeds(tmp_path, datasets):
    npz = datasets["studio"]
    again = synthesize_dataset(tmp_path / "again", NUM, domain="studio", seed=SEED,
                               image_size=SIZE, pose_source="random", image_format="png")
    assert _same_files(again, npz)
    other = synthesize_dataset(tmp_path / "other", 2, domain="studio", seed=SEED + 1,
                               image_size=SIZE, pose_source="random", image_format="png")
    assert not np.array_equal(load_npz(other)["body_pose"], load_npz(npz)["body_pose"][:2])
    val = synthesize_dataset(tmp_path / "other", 2, split="val", domain="studio", seed=SEED,
                             image_size=SIZE, pose_source="random")
    assert val.name == "val.npz" and str(load_npz(val)["imgname"][0]) == "val/000000.jpg"
    assert (val.parent / "images" / "val" / "000001.jpg").is_file()
    assert not np.array_equal(load_npz(val)["body_pose"], load_npz(npz)["body_pose"][:2])


@pytest.mark.slow
def test_worker_processes_give_the_same_dataset(tmp_path, datasets):
    parallel = synthesize_dataset(tmp_path, NUM, domain="outdoor", seed=SEED, image_size=SIZE,
                                  pose_source="random", image_format="png", workers=2)
    assert _same_files(parallel, datasets["outdoor"])


def test_domains_look_different(samples):
    def background_statistics(domain):
        pixels, steps = [], []
        for sample in samples[domain]:
            image = sample.image.astype(np.float64) / 255
            background = ~sample.mask
            pixels.append(image[background])
            step = np.abs(np.diff(image, axis=1)).mean(-1)
            steps.append(step[background[:, 1:] & background[:, :-1]])
        pixels = np.concatenate(pixels)
        saturation = pixels.max(-1) - pixels.min(-1)
        return pixels.mean(0), saturation.mean(), np.concatenate(steps).mean()

    studio_mean, studio_saturation, studio_texture = background_statistics("studio")
    outdoor_mean, outdoor_saturation, outdoor_texture = background_statistics("outdoor")
    # Measured: texture 0.000 vs 0.032, saturation 0.04 vs 0.30.
    assert studio_texture < 0.005 < 0.02 < outdoor_texture  # plain gradients vs texture, noise
    assert studio_saturation < 0.1 < 0.2 < outdoor_saturation
    assert np.abs(studio_mean - outdoor_mean).max() > 0.1
    # Part colours differ too: the torso of the outdoor palette is a saturated red.
    assert np.ptp(DOMAINS["outdoor"].palette[3]) > 0.5 > 0.1 > np.ptp(DOMAINS["studio"].palette[3])


def test_render_settings_are_recorded(datasets):
    npz = datasets["outdoor"]
    settings = json.loads(str(load_npz(npz)["render_settings"]))
    assert settings == json.loads((npz.parent / "train.json").read_text())
    assert (settings["image_size"], settings["domain"], settings["seed"]) == (SIZE, "outdoor", SEED)
    assert settings["generator_version"] == SYNTHETIC_VERSION and settings["split"] == "train"
    assert settings["focal_length"] == pytest.approx(FOCAL_LENGTH * SIZE / IMAGE_SIZE)
    assert settings["pose_source"] == {"kind": "random"} and settings["num_images"] == NUM
    assert settings["domain_style"]["noise_std"] == DOMAINS["outdoor"].noise_std


def test_parts_are_coloured_by_dominant_skinning_joint(body):
    labels = face_part_labels(body.layer.lbs_weights, body.faces)
    weights = body.layer.lbs_weights.numpy()
    brute = [int(np.argmax(weights[face].sum(0))) for face in body.faces[:500].tolist()]
    assert labels[:500].tolist() == brute
    assert set(labels.unique().tolist()) >= {0, 1, 2, 4, 5, 15, 16, 17, 18, 19}
    # Left and right parts get clearly different colours in both domains.
    for style in DOMAINS.values():
        palette = np.array(style.palette)
        for left, right in ((1, 2), (4, 5), (16, 17), (18, 19)):
            assert np.abs(palette[left] - palette[right]).max() > 0.2


def test_backgrounds_are_deterministic_and_in_range():
    for style in DOMAINS.values():
        first = draw_background(style, 40, seed=11)
        assert first.shape == (3, 40, 40) and 0 <= first.min() and first.max() <= 1
        assert torch.equal(first, draw_background(style, 40, seed=11))
        assert not torch.equal(first, draw_background(style, 40, seed=12))


@pytest.mark.skipif(not (DATA_ROOT / "hdm05").is_dir(), reason=f"no open data at {DATA_ROOT}")
def test_mocap_poses_split_by_actor(tmp_path, monkeypatch, body):
    calls = []

    def small_bank(data_root, **kwargs):  # one action only, to stay fast
        calls.append(kwargs)
        return mocap_pose_bank(data_root, actions=["squat1Reps"], cache_dir=tmp_path, **kwargs)

    monkeypatch.setattr(synthetic, "mocap_pose_bank", small_bank)
    npz = synthesize_dataset(tmp_path / "out", 4, split="val", domain="outdoor", image_size=64,
                             pose_source="auto", data_root=DATA_ROOT)
    assert calls[0]["actors"] == ["mm"] and "exclude_actors" not in calls[0]
    settings = json.loads(str(load_npz(npz)["render_settings"]))
    assert settings["pose_source"]["kind"] == "mocap"
    assert settings["pose_source"]["actors"] == ["mm"]
    bank, _ = load_pose_source("mocap", "train", DATA_ROOT, body_model=body)
    assert calls[1]["exclude_actors"] == ["mm"]
    # Mocap poses keep every label consistent with the image too.
    samples = generate_samples(range(4), domain="outdoor", image_size=SIZE, pose_bank=bank)
    for sample in samples:
        for joint in (39, 27, 28):
            x, y = sample.keypoints_2d[joint, :2]
            assert sample.mask[int(y), int(x)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_renderer_matches_cpu(body, samples):
    renderer = SyntheticRenderer(SIZE, "studio", create_body_model().to("cuda"))
    on_gpu = generate_samples(range(NUM), seed=SEED, image_size=SIZE, renderer=renderer)
    for cpu, gpu in zip(samples["studio"], on_gpu):
        np.testing.assert_allclose(gpu.keypoints_2d, cpu.keypoints_2d, atol=1e-3)
        np.testing.assert_allclose(gpu.body_pose, cpu.body_pose, atol=1e-6)
        assert _iou(gpu.mask, cpu.mask) > 0.99


def test_pose_sources_resolve(tmp_path, caplog):
    bank, description = load_pose_source(random_pose(3, np.random.default_rng(0)), "train")
    assert bank.shape == (3, 72) and description == {"kind": "array", "num_poses": 3}
    with caplog.at_level(logging.WARNING, logger="prohmr.data.synthetic"):
        bank, description = load_pose_source("auto", "train", data_root=tmp_path)
    assert bank is None and description == {"kind": "random"} and "random poses" in caplog.text
    with pytest.raises(FileNotFoundError, match="HDM05"):
        load_pose_source("mocap", "val", data_root=tmp_path)
    with pytest.raises(ValueError, match="pose_source"):
        load_pose_source("bvh", "train")
    with pytest.raises(ValueError, match=r"\(M, 72\)"):
        load_pose_source(np.zeros((3, 69)), "train")
    with pytest.raises(ValueError, match="NaN"):
        load_pose_source(np.full((3, 72), np.nan), "train")


def test_arguments_are_validated(tmp_path, datasets):
    bad = [dict(num_images=0), dict(split="test"), dict(domain="indoor"), dict(image_size=8),
           dict(image_size=64.0), dict(workers=0), dict(seed=-1), dict(image_format="bmp")]
    for change in bad:
        arguments = dict(out_dir=tmp_path, num_images=1, pose_source="random") | change
        with pytest.raises(ValueError, match=next(iter(change))):
            synthesize_dataset(**arguments)
    with pytest.raises(FileExistsError, match="overwrite"):
        synthesize_dataset(datasets["studio"].parent, 1, pose_source="random")
    with pytest.raises(ValueError, match="renderer renders"):
        generate_samples([0], image_size=SIZE + 1, renderer=SyntheticRenderer(SIZE, "studio"))
