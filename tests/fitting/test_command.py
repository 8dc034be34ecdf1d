"""``run_fit_command``: the work behind ``prohmr fit`` (files written, errors reported)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from prohmr.body.joints import OPENPOSE_HIPS
from prohmr.fitting.command import box_from_keypoints, run_fit_command, write_obj
from prohmr.models.loading import save_model
from prohmr.models.prohmr import ProHMR

COCO_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco"
WIDTH, HEIGHT = 200, 160


def _person(model: ProHMR, centre: tuple[float, float], height_px: float) -> list[float]:
    """BODY_25 keypoints of the rest-pose body facing the camera, ``height_px`` tall."""
    eye = torch.eye(3).expand(1, 24, 3, 3)
    facing = torch.diag(torch.tensor([1.0, -1.0, -1.0]))[None, None]
    with torch.no_grad():
        joints = model.body_model(facing, eye[:, 1:], torch.zeros(1, 10)).joints[0, :25]
    extent = joints[:, 1].max() - joints[:, 1].min()
    pixels = (joints[:, :2] - joints[:, :2].mean(0)) * height_px / extent + torch.tensor(centre)
    return torch.cat([pixels, torch.ones(25, 1)], dim=-1).flatten().tolist()


def _scene(folder: Path, model: ProHMR, people: list[list[float]], stem: str = "photo") -> Path:
    generator = np.random.default_rng(0)
    pixels = generator.integers(0, 255, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    image = folder / f"{stem}.png"
    Image.fromarray(pixels).save(image)
    (folder / f"{stem}_keypoints.json").write_text(
        json.dumps({"people": [{"pose_keypoints_2d": p} for p in people]})
    )
    return image


def test_writes_every_output_and_skips_people_without_keypoints(
    tmp_path: Path, make_model: Callable[..., ProHMR]
) -> None:
    model = make_model(torch.float32)
    people = [_person(model, (60, 80), 110), _person(model, (140, 90), 90), [0.0] * 75]
    image = _scene(tmp_path, model, people)
    report = run_fit_command(image, model=model, out_dir=tmp_path / "out", max_steps=2)
    assert [person.index for person in report.people] == [0, 1] and report.skipped == [2]
    assert not report.multiview and len(report.table_lines) == 4
    for person in report.people:
        assert person.reprojection_error_after < person.reprojection_error_before
        assert person.keypoints_used == 25 - len(OPENPOSE_HIPS)
        assert 1 <= person.iterations <= 2
        lines = person.files["obj"].read_text().splitlines()
        assert sum(line.startswith("v ") for line in lines) == 6890
        assert sum(line.startswith("f ") for line in lines) == model.body_model.faces.shape[0]
        with np.load(person.files["npz"]) as params:
            assert params["body_pose"].shape == (23, 3, 3) and params["betas"].shape == (10,)
            assert params["body_pose_axis_angle"].shape == (23, 3)
            assert params["vertices"].shape == (6890, 3)
            assert params["joints_2d"].shape == (44, 2)
            # The OBJ holds the camera-space mesh in viewer axes (x, -y, -z).
            first = np.array(lines[0].split()[1:], dtype=float)
            camera = params["vertices"][0] + params["camera_translation"]
            np.testing.assert_allclose(first, camera * [1, -1, -1], atol=1e-5)
        summary = json.loads(person.files["json"].read_text())
        assert len(summary["global_orient"]) == 1 and "vertices" not in summary
        after = person.reprojection_error_after
        assert summary["reprojection_error_after"] == pytest.approx(after, rel=1e-5)
        overlay = np.asarray(Image.open(person.files["overlay"]))
        original = np.asarray(Image.open(image))
        assert overlay.shape == original.shape
        assert (overlay != original).any(axis=-1).mean() > 0.02  # the mesh is drawn
        assert Image.open(person.files["side"]).size[0] > 100


def test_checkpoint_path_and_multiview(tmp_path: Path, make_model: Callable[..., ProHMR]) -> None:
    model = make_model(torch.float32)
    checkpoint = save_model(model, tmp_path / "model.pt")
    first = _scene(tmp_path, model, [_person(model, (100, 80), 120)], stem="view_a")
    second = _scene(tmp_path, model, [_person(model, (90, 85), 100)], stem="view_b")
    report = run_fit_command(first, model=checkpoint, views=[second], out_dir=tmp_path / "mv",
                             max_steps=2, use_hips=True)
    assert report.multiview and [person.index for person in report.people] == [0, 1]
    for person in report.people:
        assert person.files["obj"].name == f"view_{person.index:02d}.obj"
        assert person.reprojection_error_after < person.reprojection_error_before
        assert person.keypoints_used == 25


@pytest.mark.parametrize(
    "problem, error, message",
    [
        ("no image", FileNotFoundError, "image not found"),
        ("no keypoints", FileNotFoundError, "--keypoints"),
        ("bad json", ValueError, "not valid JSON"),
        ("no person", ValueError, "no person"),
        ("zero confidence", ValueError, "usable keypoint"),
        ("nan", ValueError, "NaN"),
        ("not an image", ValueError, "cannot read image"),
        ("no model", ValueError, "no model name or checkpoint"),
    ],
)
def test_bad_input_gives_a_clear_error(
    tmp_path: Path, make_model: Callable[..., ProHMR], problem: str, error: type, message: str
) -> None:
    model = make_model(torch.float32)
    image = _scene(tmp_path, model, [_person(model, (100, 80), 120)])
    keypoints = tmp_path / "photo_keypoints.json"
    chosen: object = model
    if problem == "no image":
        image = tmp_path / "missing.png"
    elif problem == "no keypoints":
        keypoints.unlink()
    elif problem == "bad json":
        keypoints.write_text("{")
    elif problem == "no person":
        keypoints.write_text(json.dumps({"people": []}))
    elif problem == "zero confidence":
        keypoints.write_text(json.dumps({"people": [{"pose_keypoints_2d": [5.0, 5.0, 0.0] * 25}]}))
    elif problem == "nan":
        keypoints.write_text('{"people": [{"pose_keypoints_2d": [' + ", ".join(["NaN"] * 75) + "]}]}")
    elif problem == "not an image":
        image.write_bytes(b"not a png")
    elif problem == "no model":
        chosen = None
    with pytest.raises(error, match=message):
        run_fit_command(image, model=chosen, out_dir=tmp_path / "out", max_steps=1)


def test_box_and_obj_helpers(tmp_path: Path) -> None:
    centre, side = box_from_keypoints(torch.tensor([[5.0, 5.0, 1.0], [6.0, 5.0, 1.0]]))
    assert centre.tolist() == [5.5, 5.0] and side == 32.0  # the minimum box
    with pytest.raises(ValueError, match="confidence"):
        box_from_keypoints(torch.zeros(3, 3))
    path = write_obj(tmp_path / "tri.obj", np.eye(3), np.array([[0, 1, 2]]))
    assert path.read_text().splitlines()[-1] == "f 1 2 3"


def test_real_photograph(tmp_path: Path, make_model: Callable[..., ProHMR]) -> None:
    if not COCO_DIR.is_dir():
        pytest.skip("../shared/data/coco is not available")
    image = tmp_path / "000000000785.jpg"
    shutil.copy(COCO_DIR / "000000000785.jpg", image)
    report = run_fit_command(image, COCO_DIR / "000000000785_keypoints.json",
                             model=make_model(torch.float32), out_dir=tmp_path / "out", max_steps=2)
    (person,) = report.people
    assert person.keypoints_used == 15  # 17 COCO joints minus the two hips
    assert person.reprojection_error_after < 0.5 * person.reprojection_error_before


def test_prohmr_fit_command_line(
    tmp_path: Path, make_model: Callable[..., ProHMR], capsys: pytest.CaptureFixture[str]
) -> None:
    from prohmr.cli import main

    model = make_model(torch.float32)
    checkpoint = save_model(model, tmp_path / "model.pt")
    image = _scene(tmp_path, model, [_person(model, (100, 80), 120)])
    out = tmp_path / "cli"
    assert main(["fit", "--image", str(image), "--model", str(checkpoint), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "error before (px)" in printed and "fitted 1 people" in printed
    assert (out / "person_00.obj").is_file() and (out / "person_00_overlay.png").is_file()
    assert main(["fit", "--image", str(tmp_path / "none.png"), "--out", str(out)]) == 2
    assert "image not found" in capsys.readouterr().err
