"""Shared math: rotation conversions (both 6D layouts), cameras and projection, Procrustes.

Everything here is pure PyTorch with arbitrary leading batch dimensions; see
``docs/conventions.md`` for the conventions in one place.
"""

from __future__ import annotations

from prohmr.geometry.cameras import (
    KEYPOINT_CONVENTIONS,
    WEAK_PERSPECTIVE_EPS,
    KeypointConvention,
    crop_to_full_frame_translation,
    normalized_to_pixel,
    perspective_projection,
    pixel_to_normalized,
    weak_perspective_to_translation,
)
from prohmr.geometry.procrustes import PROCRUSTES_EPS, SimilarityTransform, procrustes_align
from prohmr.geometry.rotations import (
    GRAM_SCHMIDT_EPS,
    ROT6D_LAYOUTS,
    SMALL_ANGLE_SQ,
    Rot6DLayout,
    axis_angle_to_matrix,
    gram_schmidt,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rot6d,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

__all__ = [
    "ROT6D_LAYOUTS",
    "Rot6DLayout",
    "GRAM_SCHMIDT_EPS",
    "SMALL_ANGLE_SQ",
    "gram_schmidt",
    "rot6d_to_matrix",
    "matrix_to_rot6d",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "WEAK_PERSPECTIVE_EPS",
    "KEYPOINT_CONVENTIONS",
    "KeypointConvention",
    "perspective_projection",
    "weak_perspective_to_translation",
    "crop_to_full_frame_translation",
    "pixel_to_normalized",
    "normalized_to_pixel",
    "PROCRUSTES_EPS",
    "SimilarityTransform",
    "procrustes_align",
]
