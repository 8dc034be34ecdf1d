"""Protocol presets and frame selection from H36M-style image names and validity keys."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from prohmr.evaluation.metrics import H36M_17_FROM_44, PROHMR_14, JointProtocol
from prohmr.evaluation.protocols import (
    FRAME_SELECTIONS,
    POSE_METRICS,
    PROTOCOLS,
    EvaluationProtocol,
    H36MFrame,
    get_protocol,
    parse_h36m_imgname,
    select_frames,
)


def _h36m_names() -> tuple[np.ndarray, list[int]]:
    """Names over subjects, cameras, actions and frames 1..12, and the Protocol 2 rows."""
    names, expected = [], []
    combos = itertools.product(
        ("S1", "S9", "S11"),
        ("Directions_1", "Sitting_Down", "WalkDog"),
        ("54138969", "60457274"),
        range(1, 13),
    )
    for row, (subject, action, camera, frame) in enumerate(combos):
        names.append(f"images/{subject}_{action}.{camera}_{frame:06d}.jpg")
        # Protocol 2 by hand: S9/S11, the frontal camera, 50 Hz frames 1, 6, 11 (1-based).
        if subject in ("S9", "S11") and camera == "60457274" and frame in (1, 6, 11):
            expected.append(row)
    return np.array(names), expected


def test_parse_h36m_imgname() -> None:
    assert parse_h36m_imgname("images/S9_Directions_1.60457274_000001.jpg") == H36MFrame(
        "S9", "Directions_1", "60457274", 1
    )
    assert parse_h36m_imgname("S11_Sitting_Down.55011271_001236.png") == H36MFrame(
        "S11", "Sitting_Down", "55011271", 1236
    )
    assert parse_h36m_imgname("h36m\\images\\S9_Eating.60457274_000011.jpg").frame == 11
    for name in ("val/000000.jpg", "images/S9_Directions.60457274.jpg", "S9.60457274_1.jpg",
                 "imageFiles/downtown_arguing_00/image_00000.jpg"):
        assert parse_h36m_imgname(name) is None, name


def test_h36m_p2_selection_from_npz_file(tmp_path: Path) -> None:
    names, expected = _h36m_names()
    path = tmp_path / "h36m_val.npz"
    np.savez(path, imgname=names, center=np.zeros((len(names), 2)), scale=np.ones(len(names)))
    with np.load(path, allow_pickle=False) as data:
        rows = select_frames("h36m-p2", data)
    assert rows.dtype == np.int64
    assert rows.tolist() == expected
    assert len(expected) == 2 * 3 * 3  # subjects x actions x kept frames
    # A file already restricted to Protocol 2 passes unchanged.
    assert select_frames("h36m-p2", {"imgname": names[expected]}).tolist() == list(
        range(len(expected))
    )
    # Other protocols keep every row.
    assert select_frames("synthetic", {"imgname": names}).tolist() == list(range(len(names)))


def test_h36m_p2_rejects_names_it_cannot_read() -> None:
    names, _ = _h36m_names()
    mixed = np.concatenate([names[:3], np.array(["val/000000.jpg", "val/000001.jpg"])])
    with pytest.raises(ValueError, match=r"2 of 5 names do not follow it, e.g. 'val/000000.jpg'"):
        select_frames("h36m-p2", {"imgname": mixed}, source="mine.npz")
    with pytest.raises(ValueError, match="selects none"):
        select_frames("h36m-p2", {"imgname": names[:3]})  # S1 only
    with pytest.raises(ValueError, match="'imgname' is required"):
        select_frames("h36m-p2", {"center": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"must be a \(N,\) array of str"):
        select_frames("synthetic", {"imgname": np.zeros(3)})


def test_valid_key_is_honoured_when_present() -> None:
    names = np.array([f"imageFiles/downtown_bar_00/image_{i:05d}.jpg" for i in range(4)])
    assert select_frames("3dpw", {"imgname": names}).tolist() == [0, 1, 2, 3]
    valid = np.array([True, False, True, True])
    assert select_frames("3dpw", {"imgname": names, "campose_valid": valid}).tolist() == [0, 2, 3]
    assert select_frames(
        "mpi-inf-3dhp", {"imgname": names, "valid_frame": np.array([0, 1, 1, 0])}
    ).tolist() == [1, 2]
    # The synthetic protocol has no validity key: a 'campose_valid' column is not its business.
    assert select_frames("synthetic", {"imgname": names, "campose_valid": valid}).tolist() == [
        0, 1, 2, 3,
    ]
    with pytest.raises(ValueError, match=r"'campose_valid' must be a \(4,\) boolean"):
        select_frames("3dpw", {"imgname": names, "campose_valid": valid[:3]})
    with pytest.raises(ValueError, match="selects none of its 4 rows"):
        select_frames("3dpw", {"imgname": names, "campose_valid": np.zeros(4, dtype=bool)})


def test_presets() -> None:
    assert set(PROTOCOLS) == {"h36m-p2", "3dpw", "mpi-inf-3dhp", "synthetic"}
    h36m = PROTOCOLS["h36m-p2"]
    assert h36m.joints == PROHMR_14 and h36m.joints.root == 39
    assert h36m.frame_selection == "h36m-p2" and h36m.headline == "pa_mpjpe"
    assert "pve" not in h36m.metrics
    pw3d = PROTOCOLS["3dpw"]
    assert pw3d.joints == PROHMR_14 and "pve" in pw3d.metrics
    assert any("#PS" in note and "#PH" in note for note in pw3d.notes)
    mpi = PROTOCOLS["mpi-inf-3dhp"]
    assert mpi.joints == H36M_17_FROM_44 and len(mpi.joints.joint_indices) == 17
    assert mpi.joints.joint_indices == tuple(25 + i for i in (*range(13), 14, 16, 17, 18))
    synthetic = PROTOCOLS["synthetic"]
    assert synthetic.metrics == ("mpjpe", "pa_mpjpe", "pve")
    for name, protocol in PROTOCOLS.items():
        assert protocol.name == name
        assert protocol.headline in protocol.metrics
        assert set(protocol.metrics) <= set(POSE_METRICS)
        assert protocol.frame_selection in FRAME_SELECTIONS
        assert get_protocol(name) is protocol
        record = json.loads(json.dumps(protocol.to_dict()))
        assert EvaluationProtocol.from_dict(record) == protocol


def test_custom_protocol_round_trip_and_validation() -> None:
    custom = EvaluationProtocol(
        "hips", "mean of hips", JointProtocol("hips14", (25, 26, 27), (27, 28)),
        metrics=("mpjpe",), headline="mpjpe",
    )
    assert custom.root_description() == "mean of joints (27, 28)"
    assert EvaluationProtocol.from_dict(json.loads(json.dumps(custom.to_dict()))) == custom
    assert get_protocol(custom) is custom
    with pytest.raises(ValueError, match="unknown evaluation protocol 'h36m'.*'3dpw'"):
        get_protocol("h36m")
    with pytest.raises(ValueError, match="`metrics` must be distinct names"):
        EvaluationProtocol("x", "x", PROHMR_14, metrics=("mpjpe", "pck"), headline="mpjpe")
    with pytest.raises(ValueError, match="`headline` must be one of"):
        EvaluationProtocol("x", "x", PROHMR_14, metrics=("mpjpe",), headline="pve")
    with pytest.raises(ValueError, match="`frame_selection` must be one of"):
        EvaluationProtocol("x", "x", PROHMR_14, frame_selection="every-5th")
    with pytest.raises(ValueError, match="`joints` must be a JointProtocol"):
        EvaluationProtocol("x", "x", (25, 26))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`joints` mapping"):
        EvaluationProtocol.from_dict({"name": "x"})
