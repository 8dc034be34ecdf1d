"""OpenPose BODY_25 JSON and COCO-17 keypoints, mapped to ProHMR's 44 joints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prohmr.body.joints import BODY25_JOINT_NAMES, COCO17_JOINT_NAMES
from prohmr.fitting.keypoints_io import (
    body25_to_prohmr44,
    coco17_to_body25,
    read_coco_keypoints,
    read_keypoints,
    read_openpose_json,
)

COCO_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco"


def _openpose_file(folder: Path, people: list[list[float]], name: str = "a_keypoints.json") -> Path:
    path = folder / name
    content = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p} for p in people]}
    path.write_text(json.dumps(content))
    return path


def test_reads_every_person_of_an_openpose_file(tmp_path: Path) -> None:
    first = [float(v) for v in range(75)]
    second = [0.0] * 75
    second[3:6] = [100.5, 200.25, 0.75]  # neck
    path = _openpose_file(tmp_path, [first, second])
    people = read_openpose_json(path)
    assert people.shape == (2, 25, 3) and people.dtype == torch.float32
    assert people[0].flatten().tolist() == first
    assert people[1, 1].tolist() == [100.5, 200.25, 0.75]
    as44 = read_keypoints(path)
    assert as44.shape == (2, 44, 3)
    assert torch.equal(as44[:, :25], people) and not as44[:, 25:].any()
    assert read_openpose_json(_openpose_file(tmp_path, [], "empty.json")).shape == (0, 25, 3)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"persons": []}), "people"),
        (json.dumps({"people": [{"face_keypoints_2d": []}]}), "pose_keypoints_2d"),
        (json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 54}]}), "COCO-18"),
        (json.dumps({"people": [{"pose_keypoints_2d": ["a"] * 75}]}), "numbers"),
        ('{"people": [{"pose_keypoints_2d": [' + ", ".join(["NaN"] * 75) + "]}]}", "NaN"),
        (json.dumps({"people": [{"pose_keypoints_2d": [1.0, 1.0, -1.0] * 25}]}), "negative"),
    ],
)
def test_bad_openpose_files_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_openpose_json(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        read_keypoints(tmp_path / "nothing.json")


def test_coco_joints_land_on_the_body25_joint_of_the_same_name() -> None:
    """Checked by name, independently of the index table."""
    body25_of = {
        "nose": "Nose", "left_eye": "LEye", "right_eye": "REye", "left_ear": "LEar",
        "right_ear": "REar", "left_shoulder": "LShoulder", "right_shoulder": "RShoulder",
        "left_elbow": "LElbow", "right_elbow": "RElbow", "left_wrist": "LWrist",
        "right_wrist": "RWrist", "left_hip": "LHip", "right_hip": "RHip", "left_knee": "LKnee",
        "right_knee": "RKnee", "left_ankle": "LAnkle", "right_ankle": "RAnkle",
    }
    coco = torch.zeros(2, 17, 3)
    coco[..., 0] = torch.arange(17.0)
    coco[..., 1] = 100 + torch.arange(17.0)
    coco[0, :, 2] = 2.0
    coco[1, :, 2] = torch.tensor([0.0, 1.0] * 8 + [2.0])
    body25 = coco17_to_body25(coco)
    for index, name in enumerate(COCO17_JOINT_NAMES):
        target = BODY25_JOINT_NAMES.index(body25_of[name])
        assert body25[0, target].tolist() == [float(index), 100.0 + index, 1.0]
        assert body25[1, target, 2] == float(coco[1, index, 2] > 0)
    missing = [BODY25_JOINT_NAMES.index(n) for n in ("Neck", "MidHip", "LBigToe", "RHeel")]
    assert not body25[:, missing].any()
    scores = coco.clone()
    scores[..., 2] = 0.3
    assert torch.allclose(coco17_to_body25(scores, from_annotation=False)[0, 0, 2], torch.tensor(0.3))


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        coco17_to_body25(torch.zeros(25, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 25, 3\)"):
        body25_to_prohmr44(torch.zeros(44, 3))


def test_coco_annotation_layouts(tmp_path: Path) -> None:
    annotation = {"keypoints": [10, 20, 2] * 17, "image_id": 7}
    path = tmp_path / "one.json"
    path.write_text(json.dumps(annotation))
    assert read_coco_keypoints(path).shape == (1, 17, 3)
    path.write_text(json.dumps([annotation, {"bbox": [0, 0, 1, 1]}, annotation]))
    assert read_coco_keypoints(path).shape == (2, 17, 3)
    other = dict(annotation, image_id=8)
    dataset = {"images": [{"id": 7, "file_name": "a.jpg"}, {"id": 8, "file_name": "b.jpg"}],
               "annotations": [annotation, other, other]}
    path.write_text(json.dumps(dataset))
    assert read_coco_keypoints(path, image_name="b.jpg").shape == (2, 17, 3)
    assert read_coco_keypoints(path).shape == (3, 17, 3)
    with pytest.raises(ValueError, match="none named"):
        read_coco_keypoints(path, image_name="c.jpg")
    path.write_text(json.dumps({"something": 1}))
    with pytest.raises(ValueError, match="COCO"):
        read_keypoints(path)


def test_real_coco_annotations() -> None:
    if not COCO_DIR.is_dir():
        pytest.skip("../shared/data/coco is not available")
    people = read_keypoints(COCO_DIR / "000000000785_keypoints.json", image_name="000000000785.jpg")
    assert people.shape == (1, 44, 3)
    assert int((people[0, :, 2] > 0).sum()) == 17
    raw = json.loads((COCO_DIR / "000000000785_keypoints.json").read_text())["annotations"][0]
    assert people[0, 0].tolist() == [float(raw["keypoints"][0]), float(raw["keypoints"][1]), 1.0]
    subset = read_coco_keypoints(COCO_DIR / "person_keypoints_val2017_subset.json")
    assert subset.shape == (1354, 17, 3)
    labelled = (subset[..., 2] > 0).sum(dim=-1)
    assert (labelled > 0).all()
