"""ImageDataset (npz + images), MocapDataset and MixedDataset, on small fixtures in tmp_path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from prohmr.body.joints import PROHMR_FLIP_PERMUTATION
from prohmr.constants import IMAGENET_MEAN, IMAGENET_STD
from prohmr.data.augmentation import AugmentationConfig, flip_smpl_pose
from prohmr.data.image_dataset import ZEROED_BODY25_3D_JOINTS, ImageDataset
from prohmr.data.mixture import MixedDataset
from prohmr.data.mocap_dataset import MocapDataset
from prohmr.geometry.cameras import perspective_projection
from prohmr.geometry.rotations import axis_angle_to_matrix

WIDTH, HEIGHT = 240, 200
FOCAL = 800.0
DEPTH = 8.0
NO_AUGMENTATION = AugmentationConfig.disabled()


def _marker_colors() -> np.ndarray:
    """44 distinct colours, none black."""
    rng = np.random.default_rng(100)
    colors = rng.choice(np.arange(40, 256, 12), size=(200, 3))
    unique = np.unique(colors, axis=0)
    return unique[rng.permutation(len(unique))[:44]].astype(np.uint8)


def _skeleton(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame points (44, 3) and a global orient whose projected 3x3 markers are >= 4 px
    apart (Chebyshev), so that no marker overlaps another."""
    while True:
        points = rng.uniform(-0.7, 0.7, size=(44, 3))
        orient = rng.uniform(-0.6, 0.6, size=3)
        camera = points @ axis_angle_to_matrix(torch.tensor(orient)).numpy().T
        pixels = np.floor(FOCAL * camera[:, :2] / (camera[:, 2:] + DEPTH))
        distances = np.abs(pixels[:, None] - pixels[None]).max(axis=-1) + 1e9 * np.eye(44)
        if distances.min() >= 4.0:
            return points, orient


def _write_dataset(root: Path, num_items: int = 3, drop: tuple[str, ...] = (), **extra: object
                   ) -> tuple[Path, dict[str, np.ndarray], list[np.ndarray]]:
    """Images with a 3x3 marker of a unique colour at each projected joint, and their npz."""
    rng = np.random.default_rng(101)
    colors = _marker_colors()
    (root / "images").mkdir(parents=True, exist_ok=True)
    names, centers, poses, keypoints_2d, keypoints_3d, bodies = [], [], [], [], [], []
    for item in range(num_items):
        points, orient = _skeleton(rng)
        center = np.array([WIDTH / 2, HEIGHT / 2]) + rng.uniform(-10, 10, size=2)
        camera = points @ axis_angle_to_matrix(torch.tensor(orient)).numpy().T
        pixels = FOCAL * camera[:, :2] / (camera[:, 2:] + DEPTH) + center
        image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        for joint, (x, y) in enumerate(pixels):
            col, row = int(np.floor(x)), int(np.floor(y))
            image[row - 1:row + 2, col - 1:col + 2] = colors[joint]
        name = f"images/person_{item}.png"
        Image.fromarray(image).save(root / name)
        # Keypoints at the marker's centre pixel (continuous coordinates).
        keypoints = np.concatenate([np.floor(pixels) + 0.5, np.ones((44, 1))], axis=1)
        pose = np.zeros(72)
        pose[:3] = orient
        pose[3:] = rng.uniform(-0.3, 0.3, size=69)
        names.append(name)
        centers.append(center)
        poses.append(pose)
        keypoints_2d.append(keypoints)
        keypoints_3d.append(np.concatenate([camera, np.ones((44, 1))], axis=1))
        bodies.append(points)
    keypoints_2d_array, keypoints_3d_array = np.array(keypoints_2d), np.array(keypoints_3d)
    arrays: dict[str, np.ndarray] = {
        "imgname": np.array(names),
        "center": np.array(centers),
        "scale": np.full((num_items, 2), 150.0 / 200.0),
        "body_pose": np.array(poses),
        "has_body_pose": np.ones(num_items),
        "betas": rng.normal(size=(num_items, 10)),
        "has_betas": np.ones(num_items),
        "body_keypoints_2d": keypoints_2d_array[:, :25],
        "extra_keypoints_2d": keypoints_2d_array[:, 25:],
        "body_keypoints_3d": keypoints_3d_array[:, :25],
        "extra_keypoints_3d": keypoints_3d_array[:, 25:],
    }
    for key in drop:
        arrays.pop(key)
    arrays.update(extra)  # type: ignore[arg-type]
    path = root / "data.npz"
    np.savez(path, **arrays)
    return path, arrays, bodies


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list]:
    root = tmp_path_factory.mktemp("image_dataset")
    return _write_dataset(root)


def _unnormalise(img: torch.Tensor) -> np.ndarray:
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    return np.round((img.numpy().transpose(1, 2, 0) * std + mean) * 255.0)


def _marker_checks(item: dict, colors: np.ndarray, flipped: bool) -> int:
    """Every visible keypoint inside the crop sits on the marker of the right joint."""
    pixels = _unnormalise(item["img"])
    checked = 0
    for joint, (x, y, conf) in enumerate(item["keypoints_2d"].numpy()):
        u, v = (x + 0.5) * 224, (y + 0.5) * 224
        if conf == 0 or not (2 <= u < 222 and 2 <= v < 222):
            continue
        source = PROHMR_FLIP_PERMUTATION[joint] if flipped else joint
        np.testing.assert_array_equal(pixels[int(v), int(u)], colors[source],
                                      err_msg=f"joint {joint}")
        checked += 1
    return checked


def test_item_keys_shapes_and_types(fixture_dir: tuple[Path, dict, list]) -> None:
    path, arrays, _ = fixture_dir
    dataset = ImageDataset(path, path.parent, train=False)
    assert len(dataset) == 3
    item = dataset[1]
    assert item["img"].shape == (3, 224, 224) and item["img"].dtype == torch.float32
    assert item["keypoints_2d"].shape == (44, 3) and item["keypoints_2d"].dtype == torch.float32
    assert item["keypoints_3d"].shape == (44, 4)
    shapes = {key: tuple(value.shape) for key, value in item["smpl_params"].items()}
    assert shapes == {"global_orient": (3,), "body_pose": (69,), "betas": (10,)}
    assert item["has_smpl_params"] == {"global_orient": True, "body_pose": True, "betas": True}
    assert item["smpl_params_is_axis_angle"] == {
        "global_orient": True, "body_pose": True, "betas": False}
    assert item["imgname"] == "images/person_1.png" and item["idx"] == 1 and item["gender"] == -1
    np.testing.assert_allclose(item["box_center"].numpy(), arrays["center"][1], rtol=1e-6)
    assert float(item["box_size"]) == pytest.approx(150.0)
    assert item["img_size"].tolist() == [WIDTH, HEIGHT]
    np.testing.assert_allclose(item["smpl_params"]["global_orient"].numpy(),
                               arrays["body_pose"][1, :3], rtol=1e-6)
    np.testing.assert_allclose(item["smpl_params"]["body_pose"].numpy(),
                               arrays["body_pose"][1, 3:], rtol=1e-6)
    # OpenPose joints 1-14 lose their 3D confidence; the rest keep it.
    confidence = item["keypoints_3d"][:, 3].numpy()
    assert np.all(confidence[list(ZEROED_BODY25_3D_JOINTS)] == 0)
    assert np.all(np.delete(confidence, list(ZEROED_BODY25_3D_JOINTS)) == 1)


def test_evaluation_crop_normalises_keypoints_and_hits_the_markers(
    fixture_dir: tuple[Path, dict, list],
) -> None:
    path, arrays, _ = fixture_dir
    item = ImageDataset(path, path.parent, train=False)[0]
    expected = (arrays["body_keypoints_2d"][0, :, :2] - arrays["center"][0]) / 150.0
    np.testing.assert_allclose(item["keypoints_2d"][:25, :2].numpy(), expected, atol=1e-6)
    assert _marker_checks(item, _marker_colors(), flipped=False) >= 30


@pytest.mark.parametrize("flip", [False, True])
def test_augmented_items_keep_keypoints_on_their_markers(
    fixture_dir: tuple[Path, dict, list], flip: bool
) -> None:
    path, _, _ = fixture_dir
    config = dataclasses.replace(
        AugmentationConfig(), color_factor=0.0, flip_probability=float(flip),
        rotation_probability=1.0, extreme_crop_probability=0.5,
    )
    dataset = ImageDataset(path, path.parent, train=True, augmentation=config, seed=3)
    checked = 0
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            checked += _marker_checks(dataset[index], _marker_colors(), flipped=flip)
    assert checked > 200


def test_rotation_turns_global_orientation_and_3d_keypoints_consistently(
    fixture_dir: tuple[Path, dict, list],
) -> None:
    """Posed with the augmented global orientation, the body projects onto the augmented
    2D keypoints (camera: focal FOCAL px, principal point = box centre, depth DEPTH)."""
    path, arrays, bodies = fixture_dir
    config = dataclasses.replace(NO_AUGMENTATION, rotation_probability=1.0,
                                 rotation_factor=30.0, scale_factor=0.3)
    dataset = ImageDataset(path, path.parent, train=True, augmentation=config, seed=5)
    translation = torch.tensor([0.0, 0.0, DEPTH], dtype=torch.float64)
    rotations = []
    for index in range(len(dataset)):
        item = dataset[index]
        orient = item["smpl_params"]["global_orient"].double()
        rotation = axis_angle_to_matrix(orient)
        rotations.append(float(torch.linalg.matrix_norm(
            rotation - axis_angle_to_matrix(torch.tensor(arrays["body_pose"][index, :3])))))
        focal = FOCAL / float(item["box_size"])
        projected = perspective_projection(torch.tensor(bodies[index]), translation, focal,
                                           rotation=rotation)
        # The stored keypoints were rounded to marker pixel centres (<= 0.5 px per axis).
        tolerance = 0.75 / float(item["box_size"])
        np.testing.assert_allclose(item["keypoints_2d"][:, :2].numpy(), projected.numpy(),
                                   atol=tolerance)
        np.testing.assert_allclose(item["keypoints_3d"][:, :3].numpy(),
                                   (torch.tensor(bodies[index]) @ rotation.T).numpy(),
                                   atol=1e-5)
    assert min(rotations) > 1e-3  # the augmentation really rotated


def test_flip_mirrors_image_keypoints_and_pose_exactly(
    fixture_dir: tuple[Path, dict, list],
) -> None:
    path, _, _ = fixture_dir
    plain = ImageDataset(path, path.parent, train=True, augmentation=NO_AUGMENTATION)[2]
    flip_config = dataclasses.replace(NO_AUGMENTATION, flip_probability=1.0)
    flipped = ImageDataset(path, path.parent, train=True, augmentation=flip_config)[2]
    assert torch.equal(flipped["img"], plain["img"].flip(-1))
    expected_2d = plain["keypoints_2d"][list(PROHMR_FLIP_PERMUTATION)]
    expected_2d[:, 0] *= -1
    assert torch.equal(flipped["keypoints_2d"], expected_2d)
    expected_3d = plain["keypoints_3d"][list(PROHMR_FLIP_PERMUTATION)]
    expected_3d[:, 0] *= -1
    assert torch.equal(flipped["keypoints_3d"], expected_3d)
    pose = torch.cat([plain["smpl_params"]["global_orient"], plain["smpl_params"]["body_pose"]])
    flipped_pose = torch.cat([flipped["smpl_params"]["global_orient"],
                              flipped["smpl_params"]["body_pose"]])
    assert torch.equal(flipped_pose, flip_smpl_pose(pose))
    assert torch.equal(flipped["smpl_params"]["betas"], plain["smpl_params"]["betas"])


def test_colour_augmentation_scales_channels_and_clips(fixture_dir: tuple[Path, dict, list]
                                                       ) -> None:
    path, _, _ = fixture_dir
    plain = _unnormalise(ImageDataset(path, path.parent, train=False)[0]["img"])
    config = dataclasses.replace(NO_AUGMENTATION, color_factor=0.2)
    dataset = ImageDataset(path, path.parent, train=True, augmentation=config, seed=11)
    coloured = _unnormalise(dataset[0]["img"])
    factors = []
    for channel in range(3):
        bright = plain[..., channel] > 100
        factor = float(np.median(coloured[bright, channel] / plain[bright, channel]))
        expected = np.minimum(np.round(plain[..., channel] * factor), 255.0)
        assert np.max(np.abs(coloured[..., channel] - expected)) <= 1.0
        factors.append(factor)
    assert all(0.8 <= factor <= 1.2 for factor in factors)
    assert len(set(np.round(factors, 3))) == 3  # one factor per channel


def test_same_seed_same_items_and_epochs_differ(fixture_dir: tuple[Path, dict, list]) -> None:
    path, _, _ = fixture_dir
    first = ImageDataset(path, path.parent, train=True, seed=7)
    second = ImageDataset(path, path.parent, train=True, seed=7)
    for index in range(len(first)):
        a, b = first[index], second[index]
        assert torch.equal(a["img"], b["img"]) and torch.equal(a["keypoints_2d"], b["keypoints_2d"])
    other_seed = ImageDataset(path, path.parent, train=True, seed=8)[0]
    second.set_epoch(1)
    assert not torch.equal(other_seed["box_size"], first[0]["box_size"])
    assert not torch.equal(second[0]["box_size"], first[0]["box_size"])


def test_missing_labels_give_zeros_and_no_label_flags(tmp_path: Path) -> None:
    drop = ("body_pose", "has_body_pose", "betas", "has_betas", "extra_keypoints_2d",
            "body_keypoints_3d", "extra_keypoints_3d")
    path, _, _ = _write_dataset(tmp_path, num_items=2, drop=drop)
    item = ImageDataset(path, tmp_path, train=True)[0]
    assert item["has_smpl_params"] == {"global_orient": False, "body_pose": False, "betas": False}
    assert all(torch.count_nonzero(v) == 0 for v in item["smpl_params"].values())
    assert torch.all(item["keypoints_2d"][25:, 2] == 0)
    assert torch.all(item["keypoints_2d"][:25, 2] == 1)
    assert torch.count_nonzero(item["keypoints_3d"]) == 0


def test_has_flags_and_gender_are_read(tmp_path: Path) -> None:
    path, _, _ = _write_dataset(
        tmp_path, num_items=3, has_body_pose=np.array([1, 0, 1]), has_betas=np.array([0, 1, 1]),
        gender=np.array(["m", "f", "n"]), scale=np.array([0.6, 0.7, 0.8]),
    )
    dataset = ImageDataset(path, tmp_path)
    assert [dataset[i]["has_smpl_params"]["body_pose"] for i in range(3)] == [True, False, True]
    assert [dataset[i]["has_smpl_params"]["betas"] for i in range(3)] == [False, True, True]
    assert [dataset[i]["gender"] for i in range(3)] == [0, 1, -1]
    assert [float(dataset[i]["box_size"]) for i in range(3)] == pytest.approx([120, 140, 160])


@pytest.mark.parametrize(
    "extra,match",
    [
        (dict(body_pose=np.zeros((2, 69))), r"'body_pose' must have shape \(N, 72\)"),
        (dict(body_keypoints_2d=np.zeros((2, 25, 2))),
         r"'body_keypoints_2d' must have shape \(N, 25, 3\)"),
        (dict(extra_keypoints_3d=np.zeros((2, 19, 3))),
         r"'extra_keypoints_3d' must have shape \(N, 19, 4\)"),
        (dict(betas=np.zeros((3, 10))), "'betas' has 3 rows but 'imgname' has 2"),
        (dict(center=np.full((2, 2), np.nan)), "'center' contains NaN"),
        (dict(scale=np.zeros(2)), "'scale' must be positive"),
        (dict(imgname=np.array([1, 2])), "'imgname' must be a"),
        (dict(gender=np.array(["m", "x"])), "'gender' has unknown values"),
    ],
)
def test_validation_names_the_key_and_shape(tmp_path: Path, extra: dict, match: str) -> None:
    path, _, _ = _write_dataset(tmp_path, num_items=2, **extra)
    with pytest.raises(ValueError, match=match):
        ImageDataset(path, tmp_path)


def test_missing_files_and_required_keys(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        ImageDataset(tmp_path / "nothing.npz", tmp_path)
    path, _, _ = _write_dataset(tmp_path, num_items=1, drop=("center",))
    with pytest.raises(ValueError, match="missing required key.*center"):
        ImageDataset(path, tmp_path)
    path, _, _ = _write_dataset(tmp_path, num_items=1, imgname=np.array(["images/gone.png"]))
    dataset = ImageDataset(path, tmp_path)
    with pytest.raises(FileNotFoundError, match="gone.png"):
        dataset[0]
    with pytest.raises(IndexError):
        dataset[1]
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        ImageDataset(tmp_path / "broken.npz", tmp_path)


def test_dataloader_with_two_workers_matches_direct_reads(fixture_dir: tuple[Path, dict, list]
                                                          ) -> None:
    path, _, _ = fixture_dir
    dataset = ImageDataset(path, path.parent, train=True, seed=1)
    loader = DataLoader(dataset, batch_size=2, num_workers=2, shuffle=False)
    batches = list(loader)
    assert [tuple(batch["img"].shape) for batch in batches] == [(2, 3, 224, 224), (1, 3, 224, 224)]
    assert batches[0]["has_smpl_params"]["betas"].dtype == torch.bool
    assert batches[0]["imgname"] == ["images/person_0.png", "images/person_1.png"]
    for index in range(3):
        batch = batches[index // 2]
        direct = dataset[index]
        assert torch.equal(batch["img"][index % 2], direct["img"])
        assert torch.equal(batch["keypoints_2d"][index % 2], direct["keypoints_2d"])


# --- MocapDataset ---------------------------------------------------------------------------


def test_mocap_dataset_items_and_validation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pose, betas = rng.normal(size=(4, 72)), rng.normal(size=(4, 10))
    np.savez(tmp_path / "mocap.npz", body_pose=pose, betas=betas)
    dataset = MocapDataset(tmp_path / "mocap.npz")
    assert len(dataset) == 4
    item = dataset[2]
    assert item["body_pose"].dtype == torch.float32
    np.testing.assert_allclose(item["body_pose"].numpy(), pose[2], rtol=1e-6)
    np.testing.assert_allclose(item["betas"].numpy(), betas[2], rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        MocapDataset(tmp_path / "absent.npz")
    np.savez(tmp_path / "bad.npz", body_pose=pose[:, :69], betas=betas)
    with pytest.raises(ValueError, match=r"'body_pose' must have shape \(N, 72\)"):
        MocapDataset(tmp_path / "bad.npz")
    np.savez(tmp_path / "short.npz", body_pose=pose, betas=betas[:3])
    with pytest.raises(ValueError, match="'betas' has 3"):
        MocapDataset(tmp_path / "short.npz")
    np.savez(tmp_path / "nobetas.npz", body_pose=pose)
    with pytest.raises(ValueError, match="missing required key.*betas"):
        MocapDataset(tmp_path / "nobetas.npz")


# --- MixedDataset ---------------------------------------------------------------------------


def test_mixture_frequencies_follow_the_weights() -> None:
    sizes, weights = [5, 50, 7, 300], [0.3, 0.1, 0.4, 0.2]
    datasets = [[(d, i) for i in range(size)] for d, size in enumerate(sizes)]
    mixture = MixedDataset(datasets, [3.0, 1.0, 4.0, 2.0], length=5000, seed=0)
    np.testing.assert_allclose(mixture.probabilities, weights)
    draws = [mixture[i] for i in range(len(mixture))]
    counts = np.bincount([d for d, _ in draws], minlength=4)
    expected = np.array(weights) * len(draws)
    chi_square = float(np.sum((counts - expected) ** 2 / expected))
    assert chi_square < 16.27  # p = 0.001 at 3 degrees of freedom
    # Within a dataset the item is uniform (dataset 0 has 5 items).
    within = np.bincount([i for d, i in draws if d == 0], minlength=5)
    expected_within = within.sum() / 5
    assert float(np.sum((within - expected_within) ** 2 / expected_within)) < 18.47  # df 4
    assert [mixture.locate(i) for i in range(20)] == [draws[i] for i in range(20)]


def test_mixture_is_deterministic_per_seed_and_epoch() -> None:
    datasets = [list(range(100)), list(range(100, 200))]
    first = MixedDataset(datasets, [1, 1], length=50, seed=3)
    second = MixedDataset(datasets, [1, 1], length=50, seed=3)
    assert [first[i] for i in range(50)] == [second[i] for i in range(50)]
    other = MixedDataset(datasets, [1, 1], length=50, seed=4)
    assert [first[i] for i in range(50)] != [other[i] for i in range(50)]
    second.set_epoch(1)
    assert [first[i] for i in range(50)] != [second[i] for i in range(50)]
    assert MixedDataset(datasets, [0, 1], length=10)[3] >= 100
    with pytest.raises(IndexError):
        first[50]


def test_mixture_hands_its_generator_to_image_datasets(fixture_dir: tuple[Path, dict, list]
                                                       ) -> None:
    path, _, _ = fixture_dir
    dataset = ImageDataset(path, path.parent, train=True)
    mixture = MixedDataset([dataset], [1.0], length=12, seed=0)
    same_item = [i for i in range(12) if mixture.locate(i)[1] == 0][:2]
    assert len(same_item) == 2
    first, second = (mixture[i] for i in same_item)
    assert first["idx"] == second["idx"] == 0
    assert float(first["box_size"]) != float(second["box_size"])  # independent augmentations
    assert torch.equal(mixture[same_item[0]]["img"], first["img"])


@pytest.mark.parametrize(
    "datasets,weights,length,match",
    [
        ([[1], [2]], [1.0], 3, "one entry per dataset"),
        ([[1], [2]], [1.0, -1.0], 3, "non-negative"),
        ([[1], [2]], [0.0, 0.0], 3, "not all zero"),
        ([[1], []], [1.0, 1.0], 3, "dataset 1 is empty"),
        ([[1]], [1.0], 0, "length"),
        ([], [], 3, "at least one"),
    ],
)
def test_mixture_validation(datasets: list, weights: list, length: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MixedDataset(datasets, weights, length)


# --- real photograph (../shared/data) ------------------------------------------------------

COCO_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco"


def test_real_photo_extreme_crops_keep_their_region(tmp_path: Path) -> None:
    """COCO val2017 000000000785 (CC BY 2.0) with its 17 annotated keypoints."""
    annotation_file = COCO_DIR / "000000000785_keypoints.json"
    if not annotation_file.is_file():
        pytest.skip(f"shared data not found at {COCO_DIR.resolve()}")
    import json

    from prohmr.body.joints import COCO17_TO_BODY25
    from prohmr.data.augmentation import EXTREME_CROP_REGIONS

    annotation = json.loads(annotation_file.read_text())["annotations"][0]
    coco = np.array(annotation["keypoints"], dtype=float).reshape(17, 3)
    body = np.zeros((1, 25, 3))
    body[0, list(COCO17_TO_BODY25), :2] = coco[:, :2] + 0.5  # pixel indices -> centres
    body[0, list(COCO17_TO_BODY25), 2] = coco[:, 2] > 0
    x, y, w, h = annotation["bbox"]
    np.savez(tmp_path / "coco.npz", imgname=np.array(["000000000785.jpg"]),
             center=np.array([[x + w / 2, y + h / 2]]), scale=np.array([1.2 * max(w, h) / 200]),
             body_keypoints_2d=body)
    plain = ImageDataset(tmp_path / "coco.npz", COCO_DIR)[0]
    assert plain["img_size"].tolist() == [640, 425]
    visible = plain["keypoints_2d"][:, 2] > 0
    assert int(visible.sum()) == 17
    assert torch.all(plain["keypoints_2d"][visible, :2].abs() < 0.5)
    for region, weights in [("hips", (1, 0, 0)), ("shoulders", (0, 1, 0)), ("head", (0, 0, 1))]:
        config = dataclasses.replace(NO_AUGMENTATION, extreme_crop_probability=1.0,
                                     extreme_crop_weights=weights)
        item = ImageDataset(tmp_path / "coco.npz", COCO_DIR, train=True, augmentation=config)[0]
        assert float(item["box_size"]) < 0.8 * float(plain["box_size"])
        kept = torch.zeros(44, dtype=torch.bool)
        kept[list(EXTREME_CROP_REGIONS[region])] = True
        inside = item["keypoints_2d"][kept & visible, :2]
        assert torch.all(inside.abs() <= 0.5 / 1.2 + 1e-6)  # margin 1.2 around the region
        outside = item["keypoints_2d"][~kept & visible, :2]
        assert torch.any(outside.abs() > 0.5)  # something was cut off
