"""Metrics and evaluation protocols (millimetres; joint sets and root recorded per metric)."""

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

__all__ = [
    "H36M_17",
    "H36M_17_FROM_44",
    "JOINT_PROTOCOLS",
    "JointProtocol",
    "MEAN_OF_HIPS_14",
    "MILLIMETRES_PER_METRE",
    "PROHMR_14",
    "acceleration",
    "acceleration_error",
    "min_of_n",
    "min_of_n_kmeans",
    "mode_error",
    "mpjpe",
    "pa_mpjpe",
    "pve",
    "radial_calibration",
    "sample_errors",
    "sample_quantile_calibration",
]
