"""Reading SMPL model files without ``chumpy`` and without trusting the pickle (SPEC §2).

The official SMPL ``.pkl`` files were written with Python 2 and hold some arrays as
``chumpy`` objects; chumpy no longer imports on current numpy/Python, so a plain
``pickle.load`` fails. A pickle can also run arbitrary code when loaded. This module reads
such files with a restricted unpickler that:

- maps every class of the ``chumpy`` package to an inert stand-in that only records the
  pickled state; after loading, a chumpy array (``Ch``) becomes the numpy array it stored
  under ``x``;
- rebuilds ``scipy.sparse`` CSC/CSR matrices from their pickled arrays, without letting the
  pickle call scipy code;
- allows numpy's array/dtype/scalar reconstruction and a few builtin containers;
- refuses everything else with :class:`UnsafePickleError`, before it is called.

:func:`load_smpl_pickle` validates the SMPL content, :func:`load_smpl_file` also reads
``.npz`` models, and :func:`convert_smpl_file` writes a clean pickle (numpy arrays and a
scipy sparse ``J_regressor``) that plain ``pickle``/``smplx`` load without chumpy.
"""

from __future__ import annotations

import codecs
import importlib
import io
import logging
import os
import pickle
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Callable, ClassVar, Union

import numpy as np
import scipy.sparse

from prohmr.body.joints import SMPL_PARENTS
from prohmr.constants import NUM_SMPL_JOINTS

__all__ = [
    "SMPL_DIR_ENV_VAR",
    "SMPL_DOWNLOAD_HINT",
    "SMPL_REQUIRED_KEYS",
    "UnsafePickleError",
    "RestrictedUnpickler",
    "safe_load_pickle",
    "load_smpl_pickle",
    "load_smpl_file",
    "validate_smpl_data",
    "convert_smpl_file",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the folder that holds the user's SMPL files.
SMPL_DIR_ENV_VAR: str = "PROHMR_SMPL_DIR"

#: What a user must do to get and configure the licence-gated SMPL files.
SMPL_DOWNLOAD_HINT: str = (
    "SMPL is licence-gated and cannot be shipped: register at https://smpl.is.tue.mpg.de "
    "(the gender-neutral model is also distributed by SMPLify, https://smplify.is.tue.mpg.de), "
    "save the model as SMPL_NEUTRAL.pkl, then pass its folder or file as `model_path` or set "
    f"the environment variable {SMPL_DIR_ENV_VAR} to that folder. Without these, "
    "prohmr.body.create_body_model() falls back to the procedural default body model."
)

#: Keys smplx reads from an SMPL model file.
SMPL_REQUIRED_KEYS: tuple[str, ...] = (
    "v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
)

#: numpy dtype kinds kept in a validated model (no object arrays).
_PLAIN_ARRAY_KINDS: str = "biufcSU"
#: Pose blend shapes: one 3x3 rotation (9 values) per non-root joint.
_NUM_POSE_BASIS: int = 9 * (NUM_SMPL_JOINTS - 1)

SmplArray = Union[np.ndarray, scipy.sparse.spmatrix]
PathLike = Union[str, os.PathLike]


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle referenced a callable or class outside the allow-list; nothing was called."""


class _CapturedObject:
    """Inert record of an object whose class the pickle named but we never import.

    Subclasses (one per pickled class, see :func:`_captured_class`) carry the original
    qualified name in ``source``. Unpickling only stores the constructor arguments and the
    state; :func:`_resolve` turns the record into numpy/scipy data afterwards.
    """

    source: ClassVar[str] = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> _CapturedObject:
        obj = object.__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Protocol 0/1 pickles call the class itself; __new__ already recorded the arguments.
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def state_dict(self) -> dict[str, Any]:
        """The recorded instance ``__dict__`` (slot state merged in)."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2:
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            return merged
        return dict(state) if isinstance(state, dict) else {}


class _CapturedChumpy(_CapturedObject):
    """Stand-in for any class of the ``chumpy`` package."""


class _CapturedSparse(_CapturedObject):
    """Stand-in for a ``scipy.sparse`` CSC/CSR matrix or array."""

    constructor: ClassVar[str] = ""


@lru_cache(maxsize=None)
def _captured_class(base: type[_CapturedObject], source: str, constructor: str = "") -> type:
    namespace: dict[str, Any] = {"source": source, "__module__": __name__}
    if constructor:
        namespace["constructor"] = constructor
    return type(f"{base.__name__}[{source}]", (base,), namespace)


def _import_first(*names: str) -> Any:
    """Import the first module that exists (numpy moved ``core`` to ``_core`` in 2.0)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f"none of {names} can be imported")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python-3 protocol-2 pickles use it for ``bytes``, nothing more."""
    try:
        is_latin1 = codecs.lookup(encoding).name == "iso8859-1"
    except (LookupError, TypeError):
        is_latin1 = False
    if not (isinstance(text, str) and is_latin1):
        raise UnsafePickleError("_codecs.encode is only allowed as encode(str, 'latin1')")
    return text.encode("latin1")


def _safe_reconstructor(cls: type, base: type, state: Any) -> _CapturedObject:
    """``copyreg._reconstructor`` (protocol 0/1 objects), limited to captured stand-ins."""
    if not (isinstance(cls, type) and issubclass(cls, _CapturedObject)):
        raise UnsafePickleError(
            f"copyreg._reconstructor is only allowed for chumpy/scipy.sparse objects, got {cls!r}"
        )
    return cls.__new__(cls, state)


def _build_allow_list() -> dict[tuple[str, str], Any]:
    multiarray = _import_first("numpy._core.multiarray", "numpy.core.multiarray")
    numeric = _import_first("numpy._core.numeric", "numpy.core.numeric")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    # Python 2 pickles name ``__builtin__`` and ``copy_reg``; our find_class sees raw names.
    for module in ("builtins", "__builtin__"):
        for container in (set, frozenset, list, dict, tuple, bytearray, complex, object):
            allowed[(module, container.__name__)] = container
    for module in ("copyreg", "copy_reg"):
        allowed[(module, "_reconstructor")] = _safe_reconstructor
    for name in ("csc_matrix", "csr_matrix", "csc_array", "csr_array"):
        kind = name[:3]
        for module in ("scipy.sparse", f"scipy.sparse.{kind}", f"scipy.sparse._{kind}"):
            allowed[(module, name)] = _captured_class(_CapturedSparse, f"{module}.{name}", name)
    return allowed


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = _build_allow_list()


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that only resolves allow-listed globals.

    numpy arrays, dtypes and scalars, builtin containers and scipy CSC/CSR matrices are
    allowed; any class under the ``chumpy`` package becomes an inert stand-in (see
    :func:`safe_load_pickle`, which turns stand-ins into numpy arrays). Every other global
    raises :class:`UnsafePickleError` naming it, before anything is called.

    Example:
        >>> import io, pickle
        >>> RestrictedUnpickler(io.BytesIO(pickle.dumps({"a": [1, 2]}))).load()
        {'a': [1, 2]}
        >>> RestrictedUnpickler(io.BytesIO(pickle.dumps(print))).load()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        prohmr.body.smpl_io.UnsafePickleError: refusing to load builtins.print ...
    """

    def __init__(self, file: BinaryIO, *, encoding: str = "latin1") -> None:
        super().__init__(file, encoding=encoding)

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _captured_class(_CapturedChumpy, f"{module}.{name}")
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from a pickle: only numpy arrays, scipy "
                "sparse matrices, chumpy arrays and builtin containers are allowed"
            ) from None


class _UnresolvableError(ValueError):
    """A captured object has no stored value we can recover without its library."""


def _resolve(obj: Any) -> Any:
    """Replace captured stand-ins by numpy arrays / scipy matrices, recursively."""
    if isinstance(obj, _CapturedChumpy):
        state = obj.state_dict()
        if "x" not in state:
            raise _UnresolvableError(
                f"{obj.source} is a chumpy expression without a stored value (only chumpy "
                "arrays, which keep their value in 'x', can be read without chumpy)"
            )
        return np.asarray(_resolve(state["x"]))
    if isinstance(obj, _CapturedSparse):
        return _build_sparse(obj)
    if isinstance(obj, dict):
        return {key: _resolve(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(value) for value in obj)
    return obj


def _build_sparse(obj: _CapturedSparse) -> SmplArray:
    state = {key: _resolve(value) for key, value in obj.state_dict().items()}
    shape = state.get("_shape", state.get("shape"))
    missing = [
        key for key in ("data", "indices", "indptr") if not isinstance(state.get(key), np.ndarray)
    ]
    if missing or shape is None:
        raise _UnresolvableError(
            f"{obj.source} in the pickle lacks {missing or ['_shape']}; cannot rebuild it"
        )
    constructor: Callable[..., SmplArray] = getattr(scipy.sparse, obj.constructor)
    return constructor(
        (state["data"], state["indices"], state["indptr"]), shape=tuple(int(s) for s in shape)
    )


def _check_file(path: PathLike, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}. {SMPL_DOWNLOAD_HINT}")
    return path


def _unpickle(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return RestrictedUnpickler(handle).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError,
            IndexError, KeyError, MemoryError) as exc:
        raise ValueError(f"{path} is not a readable pickle ({type(exc).__name__}: {exc})") from exc


def safe_load_pickle(path: PathLike) -> Any:
    """Load a pickle through :class:`RestrictedUnpickler`; chumpy arrays become numpy arrays.

    *Arguments*
        path: the pickle file (Python 2 pickles are read with ``encoding="latin1"``).

    *Returns*
        the unpickled object with every chumpy array replaced by its ``numpy`` value and
        scipy CSC/CSR matrices rebuilt.

    *Raises*
        FileNotFoundError if the file is missing; :class:`UnsafePickleError` for a global
        outside the allow-list; ValueError for an unreadable pickle or a chumpy expression
        that stores no value.
    """
    path = _check_file(path, "pickle file")
    try:
        return _resolve(_unpickle(path))
    except _UnresolvableError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _is_sparse(value: Any) -> bool:
    return scipy.sparse.issparse(value)


def _expect(condition: bool, key: str, expected: str, value: Any, source: str) -> None:
    if not condition:
        got = getattr(value, "shape", type(value).__name__)
        raise ValueError(f"{source}: SMPL key {key!r} must be {expected}, got {got}")


def validate_smpl_data(data: dict[str, Any], source: str = "SMPL data") -> dict[str, SmplArray]:
    """Check SMPL model content and return it as numpy arrays (sparse ``J_regressor`` kept).

    *Arguments*
        data: a mapping with at least :data:`SMPL_REQUIRED_KEYS`: ``v_template (V,3)``,
            ``f (F,3)`` integer in ``[0,V)``, ``shapedirs (V,3,K)``, ``posedirs (V,3,207)``,
            ``J_regressor (24,V)`` (dense or scipy sparse), ``weights (V,24)``,
            ``kintree_table (2,24)`` whose first row holds SMPL's parents (root ignored).
        source: name used in error messages (usually the file path).

    *Returns*
        a new dict of every array-valued entry (numpy arrays, or scipy sparse matrices
        converted to CSC); other entries (strings, nested dicts, object arrays) are dropped.

    *Raises*
        ValueError naming the missing key, or the key with a wrong shape, type or a
        non-finite value.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: an SMPL model must be a dict, got {type(data).__name__}")
    missing = [key for key in SMPL_REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"{source}: SMPL model lacks required key(s) {missing}")
    out: dict[str, SmplArray] = {}
    for key, value in data.items():
        if _is_sparse(value):
            out[str(key)] = scipy.sparse.csc_matrix(value)
        elif isinstance(value, np.ndarray) and value.dtype.kind in _PLAIN_ARRAY_KINDS:
            out[str(key)] = value
        elif key in SMPL_REQUIRED_KEYS:
            raise ValueError(
                f"{source}: SMPL key {key!r} must be an array, got {type(value).__name__}"
            )
        else:
            logger.debug("%s: dropping non-array entry %r", source, key)
    for key in SMPL_REQUIRED_KEYS:
        value = out[key]
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{source}: SMPL key {key!r} must be numeric, got {value.dtype}")
        checked = value.data if _is_sparse(value) else value
        if checked.dtype.kind == "f" and not np.isfinite(checked).all():
            raise ValueError(f"{source}: SMPL key {key!r} holds NaN or infinite values")

    v_template = out["v_template"]
    _expect(v_template.ndim == 2 and v_template.shape[1] == 3 and v_template.shape[0] > 0,
            "v_template", "(V, 3)", v_template, source)
    num_vertices = v_template.shape[0]
    faces = out["f"]
    _expect(faces.ndim == 2 and faces.shape[1] == 3 and faces.shape[0] > 0, "f", "(F, 3)", faces,
            source)
    _expect(faces.dtype.kind in "iu", "f", "an integer array", faces, source)
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise ValueError(f"{source}: SMPL key 'f' has vertex indices outside [0, {num_vertices})")
    shapedirs = out["shapedirs"]
    _expect(shapedirs.ndim == 3 and shapedirs.shape[:2] == (num_vertices, 3)
            and shapedirs.shape[2] > 0, "shapedirs", f"({num_vertices}, 3, K)", shapedirs, source)
    posedirs = out["posedirs"]
    _expect(posedirs.shape == (num_vertices, 3, _NUM_POSE_BASIS), "posedirs",
            f"({num_vertices}, 3, {_NUM_POSE_BASIS})", posedirs, source)
    regressor = out["J_regressor"]
    _expect(regressor.ndim == 2 and regressor.shape == (NUM_SMPL_JOINTS, num_vertices),
            "J_regressor", f"({NUM_SMPL_JOINTS}, {num_vertices})", regressor, source)
    weights = out["weights"]
    _expect(weights.shape == (num_vertices, NUM_SMPL_JOINTS), "weights",
            f"({num_vertices}, {NUM_SMPL_JOINTS})", weights, source)
    kintree = out["kintree_table"]
    _expect(kintree.shape == (2, NUM_SMPL_JOINTS), "kintree_table", f"(2, {NUM_SMPL_JOINTS})",
            kintree, source)
    if [int(p) for p in kintree[0, 1:]] != list(SMPL_PARENTS[1:]):
        raise ValueError(
            f"{source}: SMPL key 'kintree_table' row 0 must hold SMPL's parents "
            f"{list(SMPL_PARENTS[1:])} after the root, got {kintree[0, 1:].tolist()}"
        )
    return out


def load_smpl_pickle(path: PathLike) -> dict[str, SmplArray]:
    """Load an SMPL ``.pkl`` (official chumpy pickles included) without chumpy.

    Chumpy arrays become numpy arrays. Entries that are chumpy *expressions* (no stored
    value) are dropped with a warning unless they are required, which is an error.

    *Arguments*
        path: the ``.pkl`` file, e.g. ``SMPL_NEUTRAL.pkl``.

    *Returns*
        dict with at least ``v_template (V,3)``, ``f (F,3)``, ``shapedirs (V,3,K)``,
        ``posedirs (V,3,207)``, ``J_regressor (24,V)`` (scipy CSC if stored sparse, else
        dense), ``weights (V,24)`` and ``kintree_table (2,24)``, plus any other array entry.

    *Raises*
        FileNotFoundError naming the path and how to get SMPL; :class:`UnsafePickleError`
        if the pickle references anything outside the allow-list; ValueError naming the
        key for malformed content.
    """
    path = _check_file(path, "SMPL model file")
    raw = _unpickle(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: an SMPL pickle must hold a dict, got {type(raw).__name__}")
    data: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            data[key] = _resolve(value)
        except _UnresolvableError as exc:
            if key in SMPL_REQUIRED_KEYS:
                raise ValueError(f"{path}: SMPL key {key!r}: {exc}") from None
            logger.warning("%s: dropping entry %r: %s", path, key, exc)
    return validate_smpl_data(data, str(path))


def load_smpl_file(path: PathLike) -> dict[str, SmplArray]:
    """Load an SMPL model from a ``.pkl`` (see :func:`load_smpl_pickle`) or ``.npz`` file.

    ``.npz`` files are read with ``allow_pickle=False`` and validated the same way.

    *Arguments*
        path: the model file.

    *Returns*
        the validated model dict (see :func:`validate_smpl_data`).
    """
    path = _check_file(path, "SMPL model file")
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                data = {key: archive[key] for key in archive.files}
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path} is not a readable .npz SMPL model ({exc})") from exc
        return validate_smpl_data(data, str(path))
    return load_smpl_pickle(path)


def convert_smpl_file(src: PathLike, dst: PathLike, *, overwrite: bool = False) -> Path:
    """Rewrite an SMPL pickle (e.g. an official chumpy one) as a clean numpy/scipy pickle.

    The output holds only numpy arrays and a scipy CSC ``J_regressor`` (if the source stored
    it sparse), so ``pickle.load(f, encoding="latin1")`` and ``smplx`` read it without
    chumpy. The source is never modified.

    *Arguments*
        src: the SMPL ``.pkl`` (or ``.npz``) to read.
        dst: the output file, or an existing folder (the output is then ``dst/<src name>``
            with a ``.pkl`` suffix).
        overwrite: replace an existing output file (never the source).

    *Returns*
        the path written.

    *Raises*
        ValueError if the output would be the source; FileExistsError if it exists and
        ``overwrite`` is False; the errors of :func:`load_smpl_file` for the input.
    """
    src_path = _check_file(src, "SMPL model file")
    dst_path = Path(dst).expanduser()
    if dst_path.is_dir():
        dst_path = dst_path / src_path.with_suffix(".pkl").name
    if dst_path.resolve() == src_path.resolve() or (
        dst_path.exists() and os.path.samefile(dst_path, src_path)
    ):
        raise ValueError(f"refusing to convert {src_path} onto itself; choose another dst")
    if dst_path.exists() and not overwrite:
        raise FileExistsError(f"{dst_path} exists; pass overwrite=True to replace it")
    data = load_smpl_file(src_path)
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    pickle.dump(data, buffer, protocol=4)
    # Write next to the target and rename, so a failure never leaves a truncated model file.
    handle, tmp_name = tempfile.mkstemp(dir=dst_path.parent, prefix=f".{dst_path.name}.")
    try:
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(buffer.getvalue())
        os.replace(tmp_name, dst_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    logger.info("converted %s -> %s", src_path, dst_path)
    return dst_path
