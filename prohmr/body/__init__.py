"""Body models: joint conventions, the smplx wrapper, the procedural default, SMPL file I/O."""

from prohmr.body.model import (
    SMPL_DIR_ENV_VAR,
    BodyModel,
    BodyOutput,
    create_body_model,
    load_mean_params,
    resolve_body_model_path,
)
from prohmr.body.procedural import (
    CACHE_DIR_ENV_VAR,
    EXTRA_REGRESSOR_FILENAME,
    MEAN_PARAMS_FILENAME,
    build_procedural_body,
    default_body_model_dir,
    write_procedural_body,
)
from prohmr.body.smpl_io import (
    UnsafePickleError,
    convert_smpl_file,
    load_smpl_file,
    load_smpl_pickle,
)

__all__ = [
    "BodyModel",
    "BodyOutput",
    "CACHE_DIR_ENV_VAR",
    "EXTRA_REGRESSOR_FILENAME",
    "MEAN_PARAMS_FILENAME",
    "SMPL_DIR_ENV_VAR",
    "UnsafePickleError",
    "build_procedural_body",
    "convert_smpl_file",
    "create_body_model",
    "default_body_model_dir",
    "load_mean_params",
    "load_smpl_file",
    "load_smpl_pickle",
    "resolve_body_model_path",
    "write_procedural_body",
]
