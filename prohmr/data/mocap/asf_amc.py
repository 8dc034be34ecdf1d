"""Acclaim ASF (skeleton) and AMC (motion) reader, as used by CMU and HDM05.

Conventions (checked on the HDM05 skeletons):

- **Units.** The ASF ``:units`` line ``length 0.45`` means a file length unit is
  ``1 / 0.45`` inch, so metres = value * 0.0254 / 0.45 (about 0.05644). Lengths, the root
  ``position`` and the AMC root translations all use this unit. ``angle deg|rad`` sets the
  unit of the ASF angles; the AMC header ``:DEGREES`` / ``:RADIANS`` sets the AMC's (default:
  the ASF's).
- **Rotation order.** An axis order such as ``XYZ`` (in ``axis 0 0 20 XYZ`` or the root's
  ``axis``) and a dof list such as ``rx ry rz`` are applied in the listed order about the
  fixed (parent) axes, i.e. the matrix is ``Rz @ Ry @ Rx``: the first listed axis is the
  innermost factor. Check: with this reading every HDM05 bone direction maps to ``-y`` in its
  local frame (``C^T @ direction = (0, -1, 0)``, e.g. ``lhumerus``, axis ``180 -30 -90``),
  as the BodyBuilder skeletons are built; the opposite reading does not.
- **Kinematics.** A bone's local frame at rest is ``C`` (from ``axis``); its per-frame local
  rotation is ``L = C @ M @ C^T`` with ``M`` the dof rotation. The bone's global rotation is
  ``G = G_parent @ L`` and its end is ``start + G @ (direction * length)``, where ``direction``
  is in world coordinates at rest. The root's ``L`` uses its ``orientation`` / ``axis`` and
  the rotation channels of ``order``.

In the :class:`~prohmr.data.mocap.skeleton.MocapClip` a reader returns, joint ``"root"`` is the
root and each bone is a joint at the bone's *start* (its parent's end); a leaf bone gets an
extra joint ``"<bone>_end"`` at its end (identity rotation). Data axes are kept: Acclaim data
is y-up, and the HDM05 rest pose faces +z with the subject's left on +x.

Files are read as latin-1 (HDM05 AMC headers contain non-ASCII bytes).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prohmr.data.mocap.skeleton import MocapClip, Skeleton, euler_to_matrix

__all__ = [
    "INCH_IN_METRES",
    "DEFAULT_AMC_FRAME_RATE",
    "END_SITE_SUFFIX",
    "AcclaimBone",
    "AcclaimSkeleton",
    "read_asf",
    "read_amc",
    "load_asf_amc",
]

logger = logging.getLogger(__name__)

INCH_IN_METRES = 0.0254
#: Frame rate assumed for an AMC whose name carries none (CMU and HDM05 capture at 120 Hz).
DEFAULT_AMC_FRAME_RATE = 120.0
#: Suffix of the extra joint at the end of a leaf bone.
END_SITE_SUFFIX = "_end"
ROOT_NAME = "root"
_ROTATION_DOFS = ("rx", "ry", "rz")
_TRANSLATION_DOFS = ("tx", "ty", "tz")
_ALL_DOFS = _ROTATION_DOFS + _TRANSLATION_DOFS + ("l",)
#: HDM05 names end in ``_<take>_<frame rate>``, e.g. ``HDM_bd_squat1Reps_001_120.amc``.
_HDM05_FRAME_RATE = re.compile(r"^HDM_.+_\d+_(\d+)$")


@dataclass(frozen=True, eq=False)
class AcclaimBone:
    """One ASF bone.

    Attributes:
        name: bone name.
        direction: ``(3,)`` direction at rest in world axes, as in the file (unit length).
        length: length in file units.
        axis: ``(3,)`` angles (radians) of the bone's local frame, in ``axis_order``.
        axis_order: e.g. ``"xyz"`` (lower case).
        dof: degrees of freedom in AMC column order, e.g. ``("rx", "rz")``.
        limits: one ``(low, high)`` pair per dof, in file units.
    """

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str
    dof: tuple[str, ...]
    limits: tuple[tuple[float, float], ...]

    def local_frame(self) -> np.ndarray:
        """The rest local frame ``C`` from ``axis``: ``(3, 3)``."""
        return _acclaim_rotation(self.axis, self.axis_order)


@dataclass(frozen=True, eq=False)
class AcclaimSkeleton:
    """A parsed ASF file.

    Attributes:
        name: the ``:name`` entry.
        bones: the bones (root excluded) by name, in file order.
        children: child bone names of each bone (and of ``"root"``), in hierarchy order.
        root_order: AMC column names of the root, e.g. ``("tx", "ty", "tz", "rx", "ry", "rz")``.
        root_axis: axis order of ``root_orientation``, e.g. ``"xyz"``.
        root_position: ``(3,)`` rest root position in file units.
        root_orientation: ``(3,)`` root orientation angles in radians.
        metres_per_unit: metres per file length unit.
        angles_in_degrees: whether the ASF's angles were in degrees (the AMC default).
        source: the file it came from.
    """

    name: str
    bones: dict[str, AcclaimBone]
    children: dict[str, tuple[str, ...]]
    root_order: tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    metres_per_unit: float
    angles_in_degrees: bool
    source: str = ""

    def joint_bones(self) -> list[tuple[str, str | None, str | None]]:
        """Joints in depth-first order as ``(joint name, bone name, parent joint name)``.

        The bone is ``None`` for end sites; the parent is ``None`` for the root.
        """
        joints: list[tuple[str, str | None, str | None]] = [(ROOT_NAME, ROOT_NAME, None)]
        stack = [(child, ROOT_NAME) for child in reversed(self.children.get(ROOT_NAME, ()))]
        while stack:
            bone, parent = stack.pop()
            joints.append((bone, bone, parent))
            kids = self.children.get(bone, ())
            if not kids:
                joints.append((bone + END_SITE_SUFFIX, None, bone))
            stack.extend((child, bone) for child in reversed(kids))
        return joints

    def skeleton(self) -> Skeleton:
        """The joint tree: joint = bone start, offset = the parent bone's vector (metres)."""
        joints = self.joint_bones()
        index = {name: i for i, (name, _, _) in enumerate(joints)}
        parents = np.array([-1] + [index[p] for _, _, p in joints[1:]])
        offsets = np.zeros((len(joints), 3))
        offsets[0] = self.root_position * self.metres_per_unit
        for j, (_, _, parent) in enumerate(joints[1:], start=1):
            if parent != ROOT_NAME:
                bone = self.bones[parent]
                offsets[j] = bone.direction * bone.length * self.metres_per_unit
        return Skeleton(tuple(name for name, _, _ in joints), parents, offsets)


def _acclaim_rotation(angles: np.ndarray, order: str) -> np.ndarray:
    """Rotation applying ``order``'s axes one after the other about fixed axes: ``(..., 3, 3)``.

    ``"xyz"`` gives ``Rz @ Ry @ Rx`` (see the module docstring).
    """
    return euler_to_matrix(np.asarray(angles)[..., ::-1], order[::-1])


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mocap file not found: {path}")
    return path


def _floats(tokens: list[str], count: int, where: str, what: str) -> np.ndarray:
    if len(tokens) != count:
        raise ValueError(f"{where}: expected {count} numbers for {what}, got {len(tokens)}")
    try:
        return np.array([float(t) for t in tokens])
    except ValueError:
        raise ValueError(f"{where}: could not read numbers for {what}: {tokens}") from None


def read_asf(path: str | Path, metres_per_unit: float | None = None) -> AcclaimSkeleton:
    """Parse an Acclaim ASF skeleton file.

    Arguments:
        path: the ``.asf`` file (latin-1 text).
        metres_per_unit: metres per file length unit; default ``0.0254 / length`` from the
            ``:units`` section (``length`` defaults to 1, i.e. inches).

    Returns:
        The :class:`AcclaimSkeleton`; angles are converted to radians.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: malformed content; the message names the file and line number.
    """
    path = _check_file(path)
    lines = path.read_text(encoding="latin-1").splitlines()
    units: dict[str, str] = {}
    name = ""
    root: dict[str, tuple[list[str], int]] = {}
    raw_bones: list[tuple[int, dict[str, tuple[list[str], int]], list[tuple[float, float]]]] = []
    children: dict[str, tuple[str, ...]] = {}
    hierarchy_parent_line: dict[str, int] = {}
    section = ""
    in_block = False
    current: dict[str, tuple[list[str], int]] = {}
    current_limits: list[tuple[float, float]] = []
    block_line = 0
    last_key = ""
    for number, raw in enumerate(lines, start=1):
        where = f"{path.name} line {number}"
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        if tokens[0].startswith(":"):
            if in_block:
                raise ValueError(f"{where}: section {tokens[0]} inside an unfinished block")
            section = tokens[0][1:].lower()
            if section == "name" and len(tokens) > 1:
                name = " ".join(tokens[1:])
            continue
        key = tokens[0].lower()
        if section == "units":
            if len(tokens) != 2:
                raise ValueError(f"{where}: expected 'key value' in :units, got {line!r}")
            units[key] = tokens[1].lower()
        elif section == "root":
            root[key] = (tokens[1:], number)
        elif section == "bonedata":
            if key == "begin":
                if in_block:
                    raise ValueError(f"{where}: 'begin' inside an unfinished bone block")
                in_block, block_line, current, current_limits = True, number, {}, []
            elif key == "end":
                if not in_block:
                    raise ValueError(f"{where}: 'end' without 'begin'")
                raw_bones.append((block_line, current, current_limits))
                in_block = False
            elif not in_block:
                raise ValueError(f"{where}: {tokens[0]!r} outside a bone block")
            elif key == "limits" or (key.startswith("(") and last_key == "limits"):
                text = line[len("limits"):] if key == "limits" else line
                for low, high in re.findall(r"\(\s*(\S+)\s+(\S+)\s*\)", text):
                    try:
                        current_limits.append((float(low), float(high)))
                    except ValueError:
                        raise ValueError(f"{where}: could not read limits {text!r}") from None
                key = "limits"
            else:
                current[key] = (tokens[1:], number)
            last_key = key
        elif section == "hierarchy":
            if key in ("begin", "end"):
                continue
            parent = tokens[0]
            if parent in children:
                raise ValueError(f"{where}: {parent!r} listed twice in :hierarchy")
            children[parent] = tuple(tokens[1:])
            hierarchy_parent_line[parent] = number
    if in_block:
        raise ValueError(f"{path.name} line {block_line}: bone block without 'end'")

    angle_unit = units.get("angle", "deg")
    if angle_unit not in ("deg", "rad"):
        raise ValueError(f"{path.name}: unknown angle unit {angle_unit!r} (expected deg or rad)")
    in_degrees = angle_unit == "deg"
    to_radians = np.pi / 180.0 if in_degrees else 1.0
    if metres_per_unit is None:
        try:
            metres_per_unit = INCH_IN_METRES / float(units.get("length", "1"))
        except ValueError:
            raise ValueError(f"{path.name}: unreadable :units length {units['length']!r}") from None
    if not (np.isfinite(metres_per_unit) and metres_per_unit > 0):
        raise ValueError(f"metres_per_unit: expected a positive number, got {metres_per_unit}")

    bones: dict[str, AcclaimBone] = {}
    for block_line, entries, limits in raw_bones:
        bone = _parse_bone(entries, limits, path.name, block_line, to_radians)
        if bone.name in bones or bone.name == ROOT_NAME:
            raise ValueError(f"{path.name} line {block_line}: duplicate bone name {bone.name!r}")
        bones[bone.name] = bone

    def root_entry(key: str, default: list[str]) -> tuple[list[str], str]:
        tokens, number = root.get(key, (default, 0))
        return tokens, f"{path.name} line {number}" if number else f"{path.name} (:root {key})"

    tokens, where = root_entry("order", [])
    root_order = tuple(t.lower() for t in tokens)
    if not root_order or any(t not in _ROTATION_DOFS + _TRANSLATION_DOFS for t in root_order):
        raise ValueError(f"{where}: :root 'order' must list TX TY TZ RX RY RZ channels")
    tokens, where = root_entry("axis", ["XYZ"])
    root_axis = "".join(tokens).lower()
    if sorted(root_axis) != ["x", "y", "z"]:
        raise ValueError(f"{where}: :root 'axis' must be a permutation of XYZ")
    position_tokens, where = root_entry("position", ["0", "0", "0"])
    root_position = _floats(position_tokens, 3, where, "the root position")
    orientation_tokens, where = root_entry("orientation", ["0", "0", "0"])
    root_orientation = _floats(orientation_tokens, 3, where, "the root orientation") * to_radians

    seen = {ROOT_NAME}
    for parent, kids in children.items():
        where = f"{path.name} line {hierarchy_parent_line[parent]}"
        for bone in (parent,) + kids:
            if bone != ROOT_NAME and bone not in bones:
                raise ValueError(f"{where}: unknown bone {bone!r} in :hierarchy")
        for kid in kids:
            if kid in seen or kid == ROOT_NAME:
                raise ValueError(f"{where}: bone {kid!r} has two parents in :hierarchy")
            seen.add(kid)
    skeleton = AcclaimSkeleton(
        name=name,
        bones=bones,
        children=children,
        root_order=root_order,
        root_axis=root_axis,
        root_position=root_position,
        root_orientation=root_orientation,
        metres_per_unit=float(metres_per_unit),
        angles_in_degrees=in_degrees,
        source=str(path),
    )
    reached = {bone for _, bone, _ in skeleton.joint_bones() if bone is not None}
    unattached = [b for b in bones if b not in reached]
    if unattached:
        raise ValueError(f"{path.name}: bones not reachable from the root: {unattached}")
    return skeleton


def _parse_bone(
    entries: dict[str, tuple[list[str], int]],
    limits: list[tuple[float, float]],
    file_name: str,
    block_line: int,
    to_radians: float,
) -> AcclaimBone:
    """Build one bone from its ``key -> (tokens, line number)`` entries."""
    where = f"{file_name} line {block_line}"
    for required in ("name", "direction", "length"):
        if required not in entries:
            raise ValueError(f"{where}: bone block without '{required}'")

    def at(key: str) -> str:
        return f"{file_name} line {entries[key][1]}"

    bone_name = entries["name"][0]
    if len(bone_name) != 1:
        raise ValueError(f"{at('name')}: expected one bone name, got {bone_name}")
    direction = _floats(entries["direction"][0], 3, at("direction"), "direction")
    length = float(_floats(entries["length"][0], 1, at("length"), "length")[0])
    axis_tokens = entries.get("axis", (["0", "0", "0", "XYZ"], block_line))[0]
    if len(axis_tokens) != 4:
        raise ValueError(f"{at('axis')}: expected 'axis a b c ORDER', got {axis_tokens}")
    axis = _floats(axis_tokens[:3], 3, at("axis"), "axis") * to_radians
    axis_order = axis_tokens[3].lower()
    if sorted(axis_order) != ["x", "y", "z"]:
        raise ValueError(f"{at('axis')}: axis order must be a permutation of XYZ")
    dof = tuple(t.lower() for t in entries.get("dof", ([], block_line))[0])
    if any(d not in _ALL_DOFS for d in dof) or len(set(dof)) != len(dof):
        raise ValueError(f"{at('dof')}: expected distinct entries of {_ALL_DOFS}, got {dof}")
    if limits and len(limits) != len(dof):
        raise ValueError(f"{where}: {len(limits)} limits for {len(dof)} dofs")
    return AcclaimBone(
        name=bone_name[0],
        direction=direction,
        length=length,
        axis=axis,
        axis_order=axis_order,
        dof=dof,
        limits=tuple(limits),
    )


def _frame_rate_from_name(path: Path) -> float | None:
    match = _HDM05_FRAME_RATE.match(path.stem)
    return float(match.group(1)) if match else None


def read_amc(
    path: str | Path,
    skeleton: AcclaimSkeleton | str | Path,
    frame_rate: float | None = None,
) -> MocapClip:
    """Read an AMC motion for an ASF skeleton.

    Bones missing from a frame get zero dof values (rest). Non-rotational bone dofs (``tx``,
    ``ty``, ``tz``, ``l``) are read but not applied (the skeleton is rigid); a warning is
    logged when they are non-zero.

    Arguments:
        path: the ``.amc`` file (latin-1 text).
        skeleton: the parsed ASF, or the path of the ``.asf`` file.
        frame_rate: frames per second; default from an HDM05 name ending ``_<fps>``, else
            :data:`DEFAULT_AMC_FRAME_RATE` (with a logged warning).

    Returns:
        A :class:`MocapClip` (joints as in :meth:`AcclaimSkeleton.skeleton`, metres).

    Raises:
        FileNotFoundError: a file does not exist.
        ValueError: malformed content; the message names the file and line number.
    """
    path = _check_file(path)
    if not isinstance(skeleton, AcclaimSkeleton):
        skeleton = read_asf(skeleton)
    if frame_rate is None:
        frame_rate = _frame_rate_from_name(path)
        if frame_rate is None:
            logger.warning(
                "%s: no frame rate in the name; assuming %s Hz", path.name, DEFAULT_AMC_FRAME_RATE
            )
            frame_rate = DEFAULT_AMC_FRAME_RATE
    columns = {ROOT_NAME: skeleton.root_order}
    columns.update({name: bone.dof for name, bone in skeleton.bones.items()})

    in_degrees = skeleton.angles_in_degrees
    records: dict[str, tuple[list[int], list[list[str]], list[int]]] = {
        name: ([], [], []) for name in columns
    }
    frame = -1
    last_number: int | None = None
    for number, raw in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        head = tokens[0]
        if head.startswith(":"):
            keyword = head.upper()
            if keyword == ":DEGREES":
                in_degrees = True
            elif keyword == ":RADIANS":
                in_degrees = False
            continue
        where = f"{path.name} line {number}"
        if len(tokens) == 1 and head.lstrip("-").isdigit():
            frame_number = int(head)
            if last_number is not None and frame_number != last_number + 1:
                raise ValueError(
                    f"{where}: frame {frame_number} does not follow frame {last_number}"
                )
            last_number = frame_number
            frame += 1
            continue
        if frame < 0:
            raise ValueError(f"{where}: bone values before the first frame number")
        if head not in columns:
            raise ValueError(f"{where}: unknown bone {head!r}")
        expected = len(columns[head])
        if len(tokens) - 1 != expected:
            raise ValueError(
                f"{where}: bone {head!r} needs {expected} values, got {len(tokens) - 1}"
            )
        frames, values, line_numbers = records[head]
        frames.append(frame)
        values.append(tokens[1:])
        line_numbers.append(number)
    num_frames = frame + 1
    if num_frames == 0:
        raise ValueError(f"{path.name}: no frames")

    data: dict[str, np.ndarray] = {}
    for name, (frames, values, line_numbers) in records.items():
        array = np.zeros((num_frames, len(columns[name])))
        if frames:
            try:
                array[np.array(frames)] = np.array(values, dtype=np.float64)
            except ValueError:
                bad = next(i for i, v in enumerate(values) if not _all_floats(v))
                raise ValueError(
                    f"{path.name} line {line_numbers[bad]}: unreadable number for bone {name!r}"
                ) from None
        data[name] = array

    to_radians = np.pi / 180.0 if in_degrees else 1.0
    metres = skeleton.metres_per_unit
    joints = skeleton.joint_bones()
    rotations = np.broadcast_to(np.eye(3), (num_frames, len(joints), 3, 3)).copy()
    for j, (_, bone_name, _) in enumerate(joints):
        if bone_name is None:
            continue
        if bone_name == ROOT_NAME:
            frame_c = _acclaim_rotation(skeleton.root_orientation, skeleton.root_axis)
        else:
            frame_c = skeleton.bones[bone_name].local_frame()
        dofs = columns[bone_name]
        rotation_columns = [k for k, d in enumerate(dofs) if d in _ROTATION_DOFS]
        if not rotation_columns:
            continue
        order = "".join(dofs[k][1] for k in rotation_columns)
        motion = _acclaim_rotation(data[bone_name][:, rotation_columns] * to_radians, order)
        rotations[:, j] = frame_c @ motion @ frame_c.T
        if bone_name != ROOT_NAME and len(rotation_columns) != len(dofs):
            other = [k for k in range(len(dofs)) if k not in rotation_columns]
            if np.any(data[bone_name][:, other] != 0):
                logger.warning(
                    "%s: translation/length dofs of bone %r are ignored (rigid skeleton)",
                    path.name,
                    bone_name,
                )

    translations = np.zeros((num_frames, 3))
    for k, channel in enumerate(skeleton.root_order):
        if channel in _TRANSLATION_DOFS:
            translations[:, "xyz".index(channel[1])] = data[ROOT_NAME][:, k] * metres
    return MocapClip(skeleton.skeleton(), rotations, translations, frame_rate, path.stem)


def _all_floats(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def load_asf_amc(
    asf_path: str | Path, amc_path: str | Path, frame_rate: float | None = None
) -> MocapClip:
    """Read an ASF skeleton and one AMC motion: ``read_amc(amc_path, read_asf(asf_path))``."""
    return read_amc(amc_path, read_asf(asf_path), frame_rate)
