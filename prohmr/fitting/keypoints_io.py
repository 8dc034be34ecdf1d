"""2D keypoint inputs for fitting: OpenPose BODY_25 JSON and COCO-17, as ProHMR's 44 joints.

- OpenPose writes one JSON file per image, ``{"people": [{"pose_keypoints_2d": [x, y, c] * 25,
  ...}, ...]}`` (SPEC §5); :func:`read_openpose_json` reads every person of a file.
- COCO keypoints are 17 ``(x, y, v)`` triples; ``v`` is a visibility flag in annotations
  (0 not labelled, 1 labelled but hidden, 2 visible) or a score in detections.
  :func:`read_coco_keypoints` reads a COCO annotation file (or a list of annotations, or one),
  and :func:`coco17_to_body25` maps the joints through ``COCO17_TO_BODY25``: BODY_25 joints
  that COCO lacks (neck, mid-hip, feet) get confidence 0.
- :func:`body25_to_prohmr44` appends the 19 extra joints with confidence 0, and
  :func:`read_keypoints` reads either format straight to ``(P, 44, 3)``.

Confidence 0 means "missing". Coordinates are pixels of the original image.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from prohmr.body.joints import COCO17_JOINT_NAMES, COCO17_TO_BODY25, NUM_PROHMR_JOINTS

__all__ = [
    "NUM_BODY25_JOINTS",
    "body25_to_prohmr44",
    "coco17_to_body25",
    "read_coco_keypoints",
    "read_keypoints",
    "read_openpose_json",
]

PathLike = Union[str, os.PathLike]

#: Joints of OpenPose's BODY_25 model.
NUM_BODY25_JOINTS: int = 25
_NUM_COCO = len(COCO17_JOINT_NAMES)


def _load_json(path: PathLike, function: str) -> Any:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{function}: keypoint file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{function}: {path} is not valid JSON ({error})") from error


def _triples(values: Any, num_joints: int, where: str) -> np.ndarray:
    """``num_joints`` ``(x, y, c)`` triples from a flat list of numbers, checked."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where} must be a list of numbers ({error})") from error
    if array.shape != (3 * num_joints,):
        hint = ""
        if num_joints == NUM_BODY25_JOINTS:
            hint = " (a BODY_25 model was expected; COCO-18 output has 54 values)"
        raise ValueError(
            f"{where} must hold {3 * num_joints} numbers, got shape {array.shape}{hint}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{where} contains NaN or infinite values")
    array = array.reshape(num_joints, 3)
    if (array[:, 2] < 0).any():
        raise ValueError(f"{where} has negative confidences")
    return array


def read_openpose_json(path: PathLike) -> torch.Tensor:
    """Every person's BODY_25 keypoints in an OpenPose JSON file.

    *Arguments*
        path: the ``*_keypoints.json`` file.

    *Returns*
        ``(P, 25, 3)`` float32 ``(x, y, confidence)`` in image pixels, one row per entry of
        ``people`` (``P = 0`` when nobody was detected).

    *Raises*
        FileNotFoundError for a missing file; ValueError naming the problem for invalid
        JSON, a missing ``people`` list, a wrong number of values, NaN or negative confidences.

    *Example*
        >>> import json, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> person = {"pose_keypoints_2d": [10.0, 20.0, 0.9] * 25}
        >>> _ = (folder / "a_keypoints.json").write_text(json.dumps({"people": [person] * 2}))
        >>> read_openpose_json(folder / "a_keypoints.json").shape
        torch.Size([2, 25, 3])
    """
    function = "read_openpose_json"
    content = _load_json(path, function)
    if not isinstance(content, dict) or not isinstance(content.get("people"), list):
        raise ValueError(f"{function}: {path} has no `people` list (not an OpenPose file)")
    people = []
    for index, person in enumerate(content["people"]):
        if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
            raise ValueError(f"{function}: {path}: people[{index}] has no `pose_keypoints_2d`")
        where = f"{function}: {path}: people[{index}].pose_keypoints_2d"
        people.append(_triples(person["pose_keypoints_2d"], NUM_BODY25_JOINTS, where))
    array = np.stack(people) if people else np.zeros((0, NUM_BODY25_JOINTS, 3))
    return torch.as_tensor(array, dtype=torch.float32)


def _coco_annotations(
    content: Any, image_name: Optional[str], function: str, path: PathLike
) -> list[Any]:
    if isinstance(content, dict) and "annotations" in content:
        annotations = content["annotations"]
        if not isinstance(annotations, list):
            raise ValueError(f"{function}: {path}: `annotations` must be a list")
        images = content.get("images")
        if image_name is None or not isinstance(images, list):
            return annotations
        ids = {image.get("id") for image in images
               if isinstance(image, dict) and image.get("file_name") == image_name}
        if ids:
            return [a for a in annotations if isinstance(a, dict) and a.get("image_id") in ids]
        if len(images) > 1:
            raise ValueError(
                f"{function}: {path} lists {len(images)} images, none named {image_name!r}"
            )
        return annotations
    if isinstance(content, dict) and "keypoints" in content:
        return [content]
    if isinstance(content, list):
        return content
    raise ValueError(
        f"{function}: {path} is neither a COCO annotation file (`annotations`), an annotation "
        "(`keypoints`) nor a list of annotations"
    )


def read_coco_keypoints(path: PathLike, image_name: Optional[str] = None) -> torch.Tensor:
    """COCO-17 person keypoints from a COCO-format JSON file.

    *Arguments*
        path: a COCO annotation file (``annotations`` and optionally ``images``), a single
            annotation (``keypoints``), or a list of annotations.
        image_name: keep only the annotations of the image with this ``file_name`` when the
            file lists ``images``; a file about a single image is read whole even if its
            name differs (a sidecar file of a renamed image).

    *Returns*
        ``(P, 17, 3)`` float32 ``(x, y, v)`` in image pixels, annotations without keypoints
        skipped (``P = 0`` when there are none).
    """
    function = "read_coco_keypoints"
    content = _load_json(path, function)
    people = []
    for index, annotation in enumerate(_coco_annotations(content, image_name, function, path)):
        if not isinstance(annotation, dict) or "keypoints" not in annotation:
            continue
        where = f"{function}: {path}: annotation {index} `keypoints`"
        people.append(_triples(annotation["keypoints"], _NUM_COCO, where))
    array = np.stack(people) if people else np.zeros((0, _NUM_COCO, 3))
    return torch.as_tensor(array, dtype=torch.float32)


def _check_keypoints(keypoints: Any, num_joints: int, function: str) -> torch.Tensor:
    keypoints = torch.as_tensor(keypoints)
    if not keypoints.is_floating_point():
        keypoints = keypoints.to(torch.float32)
    if keypoints.ndim < 2 or keypoints.shape[-2:] != (num_joints, 3):
        raise ValueError(
            f"{function}: `keypoints` must have shape (..., {num_joints}, 3), "
            f"got {tuple(keypoints.shape)}"
        )
    return keypoints


def coco17_to_body25(keypoints: torch.Tensor, from_annotation: bool = True) -> torch.Tensor:
    """Map COCO-17 keypoints to OpenPose BODY_25 order.

    *Arguments*
        keypoints: ``(..., 17, 3)`` ``(x, y, v)`` (a tensor or array).
        from_annotation: ``v`` is a COCO visibility flag: confidence 1 for ``v > 0``
            (labelled, visible or not), 0 otherwise. False: ``v`` is a detector score and is
            kept as the confidence.

    *Returns*
        ``(..., 25, 3)``; neck, mid-hip and feet (absent from COCO) have confidence 0.

    *Example*
        >>> coco = torch.zeros(17, 3)
        >>> coco[5] = torch.tensor([40.0, 50.0, 2.0])  # left shoulder, visible
        >>> body25 = coco17_to_body25(coco)
        >>> body25[5].tolist(), int((body25[:, 2] > 0).sum())
        ([40.0, 50.0, 1.0], 1)
    """
    keypoints = _check_keypoints(keypoints, _NUM_COCO, "coco17_to_body25")
    confidence = keypoints[..., 2:]
    if from_annotation:
        confidence = (confidence > 0).to(keypoints.dtype)
    mapped = torch.cat([keypoints[..., :2], confidence], dim=-1)
    body25 = keypoints.new_zeros((*keypoints.shape[:-2], NUM_BODY25_JOINTS, 3))
    body25[..., list(COCO17_TO_BODY25), :] = mapped
    return body25


def body25_to_prohmr44(keypoints: torch.Tensor) -> torch.Tensor:
    """Append ProHMR's 19 extra joints (confidence 0) to BODY_25 keypoints.

    *Arguments*
        keypoints: ``(..., 25, 3)``.

    *Returns*
        ``(..., 44, 3)``.

    *Example*
        >>> body25_to_prohmr44(torch.ones(2, 25, 3))[..., 2].sum(-1)
        tensor([25., 25.])
    """
    keypoints = _check_keypoints(keypoints, NUM_BODY25_JOINTS, "body25_to_prohmr44")
    padding = keypoints.new_zeros((*keypoints.shape[:-2], NUM_PROHMR_JOINTS - NUM_BODY25_JOINTS, 3))
    return torch.cat([keypoints, padding], dim=-2)


def read_keypoints(path: PathLike, image_name: Optional[str] = None) -> torch.Tensor:
    """Read an OpenPose or COCO keypoint file as ProHMR's 44 joints.

    The format is recognised from the content: a ``people`` list is OpenPose BODY_25,
    anything with COCO ``keypoints`` is COCO-17 (mapped with :func:`coco17_to_body25`,
    visibility flags as confidences).

    *Arguments*
        path: the JSON file.
        image_name: for COCO files listing several images, the ``file_name`` to keep.

    *Returns*
        ``(P, 44, 3)`` float32 in image pixels.
    """
    content = _load_json(path, "read_keypoints")
    if isinstance(content, dict) and "people" in content:
        return body25_to_prohmr44(read_openpose_json(path))
    return body25_to_prohmr44(coco17_to_body25(read_coco_keypoints(path, image_name)))
