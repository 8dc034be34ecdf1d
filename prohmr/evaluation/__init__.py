"""Metrics and evaluation protocols (millimetres; joint sets and root recorded per metric)."""

from prohmr.evaluation.evaluator import (
    EvaluationResult,
    evaluate,
    run_eval_command,
)
from prohmr.evaluation.metrics import (
    H36M_17,
    H36M_17_FROM_44,
    JOINT_PROTOCOLS,
    MEAN_OF_HIPS_14,
    MILLIMETRES_PER_METRE,
    PROHMR_14,
    JointProtocol,
    acceleration,
    acceleration_error,
    mpjpe,
    pa_mpjpe,
    pve,
)
from prohmr.evaluation.probabilistic import (
    min_of_n,
    min_of_n_kmeans,
    mode_error,
    radial_calibration,
    sample_errors,
    sample_quantile_calibration,
)
from prohmr.evaluation.protocols import (
    PROTOCOLS,
    EvaluationProtocol,
    get_protocol,
    select_frames,
)

__all__ = [
    "EvaluationProtocol",
    "EvaluationResult",
    "H36M_17",
    "H36M_17_FROM_44",
    "JOINT_PROTOCOLS",
    "JointProtocol",
    "MEAN_OF_HIPS_14",
    "MILLIMETRES_PER_METRE",
    "PROHMR_14",
    "PROTOCOLS",
    "acceleration",
    "acceleration_error",
    "evaluate",
    "get_protocol",
    "min_of_n",
    "min_of_n_kmeans",
    "mode_error",
    "mpjpe",
    "pa_mpjpe",
    "pve",
    "radial_calibration",
    "run_eval_command",
    "sample_errors",
    "sample_quantile_calibration",
    "select_frames",
]
