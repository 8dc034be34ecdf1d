"""Chumpy-free, restricted loading of SMPL pickles, and their conversion to clean files."""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
import os
import pickle
import struct
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
from scipy.spatial.transform import Rotation

from prohmr.body.joints import SMPL_PARENTS
from prohmr.body.smpl_io import (
    SMPL_DIR_ENV_VAR,
    SMPL_REQUIRED_KEYS,
    RestrictedUnpickler,
    UnsafePickleError,
    convert_smpl_file,
    load_smpl_file,
    load_smpl_pickle,
    safe_load_pickle,
    validate_smpl_data,
)

NUM_VERTICES = 6890  # smplx's landmark vertex ids go up to 6787


def random_smpl_data(num_vertices: int = NUM_VERTICES, seed: int = 0) -> dict[str, Any]:
    """A random model in SMPL's format (sparse J_regressor and a uint32 root parent, as SMPL)."""
    rng = np.random.default_rng(seed)
    regressor = rng.random((24, num_vertices)) * (rng.random((24, num_vertices)) < 0.05)
    regressor[:, :1] += 0.1
    weights = rng.random((num_vertices, 24)) ** 8
    num_faces = 2 * num_vertices
    return {
        "v_template": rng.normal(scale=0.3, size=(num_vertices, 3)),
        "f": ((np.arange(num_faces)[:, None] + np.arange(3)) % num_vertices).astype(np.uint32),
        "shapedirs": rng.normal(scale=0.02, size=(num_vertices, 3, 10)),
        "posedirs": rng.normal(scale=0.002, size=(num_vertices, 3, 207)).astype(np.float32),
        "J_regressor": scipy.sparse.csc_matrix(regressor / regressor.sum(1, keepdims=True)),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], np.int64),
        "bs_style": "lbs",
    }


@pytest.fixture(scope="module")
def smpl_data() -> dict[str, Any]:
    """A small model: the loader does not depend on the vertex count."""
    return random_smpl_data(num_vertices=50)


@pytest.fixture(scope="module")
def full_smpl_data() -> dict[str, Any]:
    """A model with SMPL's 6890 vertices, as smplx needs for its landmark joints."""
    return random_smpl_data()


@contextlib.contextmanager
def fake_chumpy() -> Iterator[tuple[type, type]]:
    """Install a minimal stand-in ``chumpy`` package, remove it again on exit.

    ``Ch`` pickles like chumpy's (default object reduction, state = ``__dict__`` holding the
    value under ``x``); ``Select`` is an expression that stores no value.
    """
    package = types.ModuleType("chumpy")
    ch_module = types.ModuleType("chumpy.ch")
    reordering = types.ModuleType("chumpy.reordering")

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x = x
            self._dirty_vars = {"x"}
            self._itr = None

    class Select:
        def __init__(self, a: Any, idxs: np.ndarray) -> None:
            self.a = a
            self.idxs = idxs

    for cls, module in ((Ch, ch_module), (Select, reordering)):
        cls.__module__ = module.__name__
        cls.__qualname__ = cls.__name__
        setattr(module, cls.__name__, cls)
    names = {"chumpy": package, "chumpy.ch": ch_module, "chumpy.reordering": reordering}
    sys.modules.update(names)
    try:
        yield Ch, Select
    finally:
        for name in names:
            sys.modules.pop(name, None)


def write_chumpy_pickle(path: Path, data: dict[str, Any], protocol: int = 2, **extra: Any) -> None:
    """Pickle ``data`` as the official files do: ``shapedirs`` and ``posedirs`` as chumpy."""
    with fake_chumpy() as (Ch, Select):
        content = dict(data, shapedirs=Ch(data["shapedirs"]), posedirs=Ch(data["posedirs"]))
        content.update({key: value(Ch, Select) for key, value in extra.items()})
        path.write_bytes(pickle.dumps(content, protocol=protocol))
    assert "chumpy" not in sys.modules


def assert_same_model(loaded: dict[str, Any], reference: dict[str, Any]) -> None:
    for key in SMPL_REQUIRED_KEYS:
        got, want = loaded[key], reference[key]
        if scipy.sparse.issparse(want):
            assert scipy.sparse.issparse(got)
            got, want = got.toarray(), want.toarray()
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype, key
        np.testing.assert_array_equal(got, want, err_msg=key)


# --- chumpy-free loading ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_chumpy_pickle_loads_without_chumpy(tmp_path, smpl_data, protocol):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    write_chumpy_pickle(path, smpl_data, protocol=protocol)
    with pytest.raises(ModuleNotFoundError):
        with path.open("rb") as handle:
            pickle.load(handle, encoding="latin1")
    loaded = load_smpl_pickle(path)
    assert "chumpy" not in sys.modules
    assert_same_model(loaded, smpl_data)
    assert "bs_style" not in loaded  # non-array entries are dropped


def _short_string(value: bytes) -> bytes:
    assert len(value) < 256
    return b"U" + bytes([len(value)]) + value


def _py2_array(array: np.ndarray) -> bytes:
    """A float64 array pickled the way numpy under Python 2 did (raw data as a py2 str)."""
    shape = b"".join(b"K" + bytes([n]) for n in array.shape)
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
        b"(K\x01(" + shape + b"tcnumpy\ndtype\nU\x02f8K\x00K\x01\x87R"
        b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        + _short_string(array.astype("<f8").tobytes()) + b"tb"
    )


def test_python2_pickle_with_chumpy_objects(tmp_path):
    """Hand-written Python 2 opcodes: ``__builtin__``/``copy_reg`` names, py2 str data."""
    shapedirs = np.arange(6, dtype=np.float64).reshape(2, 3) + 0.25
    posedirs = -np.arange(4, dtype=np.float64).reshape(4, 1) - 128.5  # bytes >= 0x80
    body = (
        b"\x80\x02}(" + _short_string(b"shapedirs")
        # protocol-2 chumpy object: NEWOBJ + BUILD with its __dict__
        + b"cchumpy.ch\nCh\n)\x81}(" + _short_string(b"x") + _py2_array(shapedirs)
        + _short_string(b"_dirty_vars") + b"c__builtin__\nset\n](K\x01K\x02e\x85Rub"
        + _short_string(b"posedirs")
        # protocol-0/1 style object: copy_reg._reconstructor(cls, object, None) + BUILD
        + b"ccopy_reg\n_reconstructor\n(cchumpy.ch\nCh\nc__builtin__\nobject\nNtR}("
        + _short_string(b"x") + _py2_array(posedirs) + b"ub"
        + b"u."
    )
    path = tmp_path / "py2.pkl"
    path.write_bytes(body)
    loaded = safe_load_pickle(path)
    assert set(loaded) == {"shapedirs", "posedirs"}
    np.testing.assert_array_equal(loaded["shapedirs"], shapedirs)
    np.testing.assert_array_equal(loaded["posedirs"], posedirs)
    assert "chumpy" not in sys.modules


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_numpy_and_sparse_round_trip(tmp_path, protocol):
    rng = np.random.default_rng(1)
    value = {
        "dense": rng.normal(size=(19, 7)).astype(np.float32),
        "ints": np.arange(5, dtype=np.uint32),
        "scalar": np.float64(2.5),
        "csr": scipy.sparse.csr_matrix(rng.random((4, 6)) * (rng.random((4, 6)) < 0.5)),
        "nested": [(1, 2.0), {"a": frozenset({3})}, bytearray(b"ab"), complex(1, 2)],
    }
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    loaded = safe_load_pickle(path)
    np.testing.assert_array_equal(loaded["dense"], value["dense"])
    assert loaded["dense"].dtype == np.float32 and loaded["ints"].dtype == np.uint32
    assert loaded["scalar"] == 2.5 and isinstance(loaded["scalar"], np.float64)
    assert isinstance(loaded["csr"], scipy.sparse.csr_matrix)
    np.testing.assert_array_equal(loaded["csr"].toarray(), value["csr"].toarray())
    assert loaded["nested"] == value["nested"]


def test_chumpy_expression_without_value(tmp_path, smpl_data, caplog):
    path = tmp_path / "expr.pkl"
    write_chumpy_pickle(
        path, smpl_data, vert_sym_idxs=lambda Ch, Select: Select(Ch(np.arange(3)), np.arange(2))
    )
    with caplog.at_level(logging.WARNING, logger="prohmr.body.smpl_io"):
        loaded = load_smpl_pickle(path)
    assert "vert_sym_idxs" not in loaded
    assert "chumpy.reordering.Select" in caplog.text
    with fake_chumpy() as (Ch, Select):
        content = dict(smpl_data, weights=Select(Ch(smpl_data["weights"]), np.arange(2)))
        path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(ValueError, match=r"'weights'.*chumpy\.reordering\.Select"):
        load_smpl_pickle(path)


# --- refusing code ------------------------------------------------------------------------


class _Reduce:
    """Pickles as ``callable(*args)``: what a crafted malicious pickle contains."""

    def __init__(self, callable_: Any, *args: Any) -> None:
        self.callable_, self.args = callable_, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.callable_, self.args


@pytest.mark.parametrize(
    "make, name",
    [
        # Protocol 2 writes Python 2 names (__builtin__, commands) where they differ.
        (lambda marker: _Reduce(os.system, f"touch {marker}"), rf"{os.system.__module__}\.system"),
        (lambda marker: _Reduce(builtins.eval, f"open({str(marker)!r}, 'w')"),
         r"(__builtin__|builtins)\.eval"),
        (lambda marker: _Reduce(builtins.exec, f"open({str(marker)!r}, 'w')"),
         r"(__builtin__|builtins)\.exec"),
        (lambda marker: _Reduce(subprocess.call, ["touch", str(marker)]),
         r"(subprocess|commands)\.call"),
    ],
    ids=["os.system", "eval", "exec", "subprocess"],
)
def test_malicious_pickle_is_refused(tmp_path, smpl_data, make, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    for protocol in (2, 4):
        path.write_bytes(pickle.dumps(dict(smpl_data, J=make(marker)), protocol=protocol))
        for loader in (load_smpl_pickle, safe_load_pickle, load_smpl_file):
            with pytest.raises(UnsafePickleError, match=name) as info:
                loader(path)
            assert isinstance(info.value, ValueError)
            assert isinstance(info.value, pickle.UnpicklingError)
            assert str(path) in str(info.value)
    assert not marker.exists()
    control = tmp_path / "control"  # the payload does work when unpickled without restriction
    pickle.loads(pickle.dumps(make(control)))
    assert control.exists()


def test_python2_global_and_reconstructor_abuse_refused(tmp_path):
    marker = tmp_path / "pwned"
    crafted = {
        "__builtin__.eval": b"c__builtin__\neval\n(U\x041+1\ntR.",
        "copyreg._reconstructor": b"ccopy_reg\n_reconstructor\n(c__builtin__\nlist\n"
        b"c__builtin__\nlist\nNtR.",
        "_codecs.encode": b"c_codecs\nencode\n(X\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13tR.",
        "posix.system": b"cposix\nsystem\n(X" + struct.pack("<I", len(f"touch {marker}"))
        + f"touch {marker}".encode() + b"tR.",
    }
    for name, body in crafted.items():
        with pytest.raises(UnsafePickleError, match=name.replace(".", r"\.")):
            RestrictedUnpickler(io.BytesIO(body)).load()
    assert not marker.exists()


# --- validation and errors ----------------------------------------------------------------


def test_missing_file_message_names_path_and_env_var(tmp_path):
    missing = tmp_path / "nowhere" / "SMPL_NEUTRAL.pkl"
    for loader in (load_smpl_pickle, load_smpl_file, safe_load_pickle):
        with pytest.raises(FileNotFoundError) as info:
            loader(missing)
        message = str(info.value)
        assert str(missing) in message and SMPL_DIR_ENV_VAR in message
        assert "smpl.is.tue.mpg.de" in message


@pytest.mark.parametrize(
    "key, value, pattern",
    [
        ("posedirs", np.zeros((50, 3, 200)), r"'posedirs'.*\(50, 3, 207\)"),
        ("v_template", np.zeros((50, 2)), r"'v_template'.*\(V, 3\)"),
        ("weights", np.zeros((50, 23)), r"'weights'.*\(50, 24\)"),
        ("J_regressor", np.zeros((23, 50)), r"'J_regressor'.*\(24, 50\)"),
        ("J_regressor", np.zeros((24, 51)), r"'J_regressor'.*\(24, 50\)"),
        ("f", np.full((10, 3), 50), r"'f'.*outside"),
        ("f", np.zeros((10, 3)), r"'f'.*integer"),
        ("kintree_table", np.zeros((2, 24), np.int64), r"'kintree_table'.*parents"),
        ("shapedirs", "not an array", r"'shapedirs'.*array"),
    ],
)
def test_malformed_key_is_named(smpl_data, key, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_smpl_data(dict(smpl_data, **{key: value}), "model.pkl")


def test_missing_key_nan_and_non_dict(tmp_path, smpl_data):
    broken = dict(smpl_data)
    del broken["weights"]
    with pytest.raises(ValueError, match=r"lacks required key\(s\) \['weights'\]"):
        validate_smpl_data(broken)
    nan = dict(smpl_data, v_template=smpl_data["v_template"].copy())
    nan["v_template"][5, 1] = np.nan
    with pytest.raises(ValueError, match="'v_template' holds NaN"):
        validate_smpl_data(nan)
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="must hold a dict"):
        load_smpl_pickle(path)
    path.write_bytes(pickle.dumps(smpl_data, protocol=4)[:1000])
    with pytest.raises(ValueError, match="not a readable pickle"):
        load_smpl_pickle(path)


def test_npz_model(tmp_path, smpl_data):
    path = tmp_path / "SMPL_NEUTRAL.npz"
    dense = {k: v for k, v in smpl_data.items() if k != "bs_style"}
    dense["J_regressor"] = smpl_data["J_regressor"].toarray()
    np.savez(path, **dense)
    loaded = load_smpl_file(path)
    assert_same_model(loaded, dense)


# --- conversion ---------------------------------------------------------------------------


def _smplx_vertices(model: smplx.SMPL, seed: int = 3) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    pose = Rotation.random(4 * 24, random_state=seed).as_rotvec().reshape(4, 72)
    pose = torch.tensor(pose, dtype=torch.float32)
    betas = torch.tensor(rng.normal(size=(4, 10)), dtype=torch.float32)
    with contextlib.redirect_stdout(io.StringIO()):
        out = model(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas)
    return out.vertices


def test_convert_round_trip_loads_in_smplx(tmp_path, full_smpl_data):
    smpl_data = full_smpl_data
    src = tmp_path / "basicModel_neutral.pkl"
    write_chumpy_pickle(src, smpl_data)
    original = src.read_bytes()
    out_dir = tmp_path / "converted"
    out_dir.mkdir()
    dst = convert_smpl_file(src, out_dir)
    assert dst == out_dir / src.name and src.read_bytes() == original
    # A plain pickle.load (what smplx does) reads it: no chumpy, no custom classes.
    with dst.open("rb") as handle:
        plain = pickle.load(handle, encoding="latin1")
    assert scipy.sparse.issparse(plain["J_regressor"])
    assert_same_model(plain, smpl_data)
    with contextlib.redirect_stdout(io.StringIO()):
        from_file = smplx.SMPL(model_path=str(dst))
        from_dict = smplx.SMPL(model_path=str(dst), data_struct=smplx.utils.Struct(**smpl_data))
    torch.testing.assert_close(_smplx_vertices(from_file), _smplx_vertices(from_dict), rtol=0,
                               atol=0)


def test_convert_never_overwrites_source(tmp_path, smpl_data):
    src = tmp_path / "SMPL_NEUTRAL.pkl"
    write_chumpy_pickle(src, smpl_data)
    original = src.read_bytes()
    with pytest.raises(ValueError, match="onto itself"):
        convert_smpl_file(src, src)
    with pytest.raises(ValueError, match="onto itself"):
        convert_smpl_file(src, tmp_path)  # a folder: dst would be the source itself
    link = tmp_path / "link.pkl"
    link.symlink_to(src)
    with pytest.raises(ValueError, match="onto itself"):
        convert_smpl_file(src, link, overwrite=True)
    with pytest.raises(ValueError, match="onto itself"):
        convert_smpl_file(link, src, overwrite=True)
    dst = tmp_path / "clean" / "model.pkl"
    assert convert_smpl_file(src, dst) == dst
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_smpl_file(src, dst)
    dst.write_bytes(b"stale")
    assert convert_smpl_file(src, dst, overwrite=True) == dst and dst.read_bytes() != b"stale"
    assert src.read_bytes() == original
    assert sorted(p.name for p in dst.parent.iterdir()) == ["model.pkl"]  # no temp files left


def test_convert_refuses_malicious_source_and_leaves_no_output(tmp_path, smpl_data):
    src = tmp_path / "evil.pkl"
    src.write_bytes(pickle.dumps(dict(smpl_data, J=_Reduce(os.system, "true")), protocol=2))
    dst = tmp_path / "out.pkl"
    with pytest.raises(UnsafePickleError, match="system"):
        convert_smpl_file(src, dst)
    assert not dst.exists()
