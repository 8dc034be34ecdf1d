"""The ``prohmr`` command: exit codes and one-line errors for bad input."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from prohmr.body import default_body_model_dir, load_smpl_pickle
from prohmr.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("body", "data", "fit", "eval", "demo"):
        assert command in out


def test_body_convert_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.pkl"
    code = main(["body", "convert", str(missing), str(tmp_path / "out.pkl")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.pkl" in err and "Traceback" not in err


def test_body_convert_refuses_unsafe_pickle(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("side effect",))

    src = tmp_path / "evil.pkl"
    src.write_bytes(pickle.dumps({"v_template": Payload()}))
    code = main(["body", "convert", str(src), str(tmp_path / "out.pkl")])
    assert code == 2
    captured = capsys.readouterr()
    assert "side effect" not in captured.out
    assert "print" in captured.err
    assert not (tmp_path / "out.pkl").exists()


def test_body_convert_does_not_overwrite_without_flag(tmp_path, capsys):
    src = default_body_model_dir() / "SMPL_NEUTRAL.pkl"
    dst = tmp_path / "dst.pkl"
    dst.write_bytes(b"user data")
    code = main(["body", "convert", str(src), str(dst)])
    assert code == 2
    assert "exists" in capsys.readouterr().err
    assert dst.read_bytes() == b"user data"
    assert main(["body", "convert", str(src), str(dst), "--overwrite"]) == 0
    assert load_smpl_pickle(dst)["v_template"].shape == (6890, 3)


def test_train_command_runs():
    script = Path(sys.executable).parent / "prohmr-train"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "{fit,validate,test,predict}" in result.stdout


def test_console_scripts_are_installed():
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "prohmr").exists()
    assert (bin_dir / "prohmr-train").exists()


def test_eval_reports_a_missing_dataset_in_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere.npz"
    code = main(["eval", "--model", "prohmr_synthetic", "--dataset", str(missing)])
    assert code == 2
    err = capsys.readouterr().err
    assert "nowhere.npz" in err and "Traceback" not in err


def test_eval_rejects_an_unknown_protocol(tmp_path, capsys):
    code = main(["eval", "--model", "prohmr_synthetic", "--dataset", str(tmp_path / "x.npz"),
                 "--protocol", "h36m-p9"])
    assert code == 2
    assert "h36m-p9" in capsys.readouterr().err


def test_data_mocap_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "mocap.npz"
    out.write_bytes(b"user data")
    code = main(["data", "mocap", "--out", str(out), "--actors", "mm"])
    assert code == 2
    assert "mocap.npz" in capsys.readouterr().err
    assert out.read_bytes() == b"user data"
