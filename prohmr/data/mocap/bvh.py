"""BVH (Biovision hierarchy) reader.

Conventions:

- **Rotation order.** A joint's rotation channels are composed in the listed order,
  ``R = R_ch1 @ R_ch2 @ R_ch3`` (e.g. ``Zrotation Yrotation Xrotation`` gives
  ``Rz @ Ry @ Rx``), angles in degrees; this equals scipy's
  ``Rotation.from_euler("ZYX", [z, y, x], degrees=True)`` (upper case = intrinsic).
- **Kinematics.** ``OFFSET`` is the joint's position in its parent's frame, the rest pose has
  identity rotations, the root's position is ``OFFSET`` plus its position channels. Position
  channels on other joints are ignored (the skeleton is rigid) with a logged warning.
- **Joints.** Joints appear in file order (depth first). An ``End Site`` becomes a joint named
  ``"<parent>_end"`` with identity rotation.
- **Units.** Lengths are multiplied by ``scale`` (metres per file unit). The CMU BVH
  conversions keep the Acclaim unit of the CMU ASF files (``length 0.45``: 1/0.45 inch), so
  :data:`CMU_BVH_SCALE` = 0.0254 / 0.45 m; it gives standing heights of about 1.6-1.8 m for
  the CMU clips. Pass ``scale=0.01`` for files in centimetres.
- **Axes** are kept as in the file (CMU: y up, rest pose facing +z, the subject's left on +x).
- **Frame rate** is ``1 / Frame Time``, snapped to the nearest integer when within a relative
  :data:`FRAME_RATE_SNAP_TOLERANCE` (``Frame Time: .0083333`` reads as 120 Hz).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prohmr.data.mocap.asf_amc import END_SITE_SUFFIX, INCH_IN_METRES
from prohmr.data.mocap.skeleton import MocapClip, Skeleton, euler_to_matrix

__all__ = ["CMU_BVH_SCALE", "FRAME_RATE_SNAP_TOLERANCE", "read_bvh"]

logger = logging.getLogger(__name__)

#: Metres per unit of the CMU BVH conversions (the CMU ASF unit, 1/0.45 inch).
CMU_BVH_SCALE = INCH_IN_METRES / 0.45
#: Relative distance to an integer under which ``1 / Frame Time`` is rounded to it.
FRAME_RATE_SNAP_TOLERANCE = 1e-4
_CHANNEL_NAMES = {
    f"{axis}{kind}": (kind, axis.lower())
    for axis in "XYZ"
    for kind in ("position", "rotation")
}


@dataclass
class _Joint:
    name: str
    parent: int
    line: int
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    channels: list[tuple[str, str]] = field(default_factory=list)


class _Tokens:
    """Header tokens with their line numbers, for error messages."""

    def __init__(self, file_name: str, tokens: list[tuple[str, int]]) -> None:
        self.file_name = file_name
        self.tokens = tokens
        self.position = 0

    def line(self) -> int:
        """Line number of the next token (of the last one at the end)."""
        index = min(self.position, len(self.tokens) - 1)
        return self.tokens[index][1] if self.tokens else 1

    def where(self) -> str:
        return f"{self.file_name} line {self.line()}"

    def next(self, what: str) -> str:
        if self.position >= len(self.tokens):
            raise ValueError(f"{self.where()}: file ends where {what} was expected")
        token = self.tokens[self.position][0]
        self.position += 1
        return token

    def expect(self, word: str) -> None:
        where = self.where()
        token = self.next(repr(word))
        if token.upper() != word.upper():
            raise ValueError(f"{where}: expected {word!r}, got {token!r}")

    def number(self, what: str) -> float:
        where = self.where()
        token = self.next(what)
        try:
            return float(token)
        except ValueError:
            raise ValueError(f"{where}: expected a number for {what}, got {token!r}") from None


def _parse_hierarchy(tokens: _Tokens) -> list[_Joint]:
    """Parse ``HIERARCHY ROOT ... }`` into joints in depth-first order."""
    tokens.expect("HIERARCHY")
    tokens.expect("ROOT")
    joints: list[_Joint] = []
    line = tokens.line()
    _parse_joint(tokens, joints, tokens.next("the root name"), -1, line)
    if tokens.position != len(tokens.tokens):
        raise ValueError(f"{tokens.where()}: unexpected {tokens.next('')!r} after the root joint")
    return joints


def _parse_joint(
    tokens: _Tokens, joints: list[_Joint], name: str, parent: int, line: int
) -> None:
    if any(joint.name == name for joint in joints):
        raise ValueError(f"{tokens.file_name} line {line}: duplicate joint name {name!r}")
    index = len(joints)
    joint = _Joint(name, parent, line)
    joints.append(joint)
    tokens.expect("{")
    end_sites = 0
    while True:
        line = tokens.line()
        where = tokens.where()
        keyword = tokens.next("'}'").upper()
        if keyword == "}":
            return
        if keyword == "OFFSET":
            joint.offset = np.array([tokens.number(f"the OFFSET of {name}") for _ in range(3)])
        elif keyword == "CHANNELS":
            count = tokens.number(f"the channel count of {name}")
            if count != int(count) or count < 0:
                raise ValueError(f"{where}: invalid channel count {count}")
            for _ in range(int(count)):
                channel_where = tokens.where()
                channel = tokens.next(f"a channel name of {name}")
                key = channel[0].upper() + channel[1:].lower()
                if key not in _CHANNEL_NAMES:
                    raise ValueError(f"{channel_where}: unknown channel {channel!r}")
                joint.channels.append(_CHANNEL_NAMES[key])
        elif keyword == "JOINT":
            _parse_joint(tokens, joints, tokens.next("a joint name"), index, line)
        elif keyword == "END":
            tokens.expect("Site")
            site = f"{name}{END_SITE_SUFFIX}" + (str(end_sites) if end_sites else "")
            end_sites += 1
            end = _Joint(site, index, line)
            tokens.expect("{")
            tokens.expect("OFFSET")
            end.offset = np.array([tokens.number(f"the OFFSET of {site}") for _ in range(3)])
            tokens.expect("}")
            joints.append(end)
        else:
            raise ValueError(f"{where}: unexpected {keyword!r} in joint {name!r}")


def _snap_frame_rate(frame_time: float) -> float:
    rate = 1.0 / frame_time
    nearest = round(rate)
    if nearest > 0 and abs(rate - nearest) <= FRAME_RATE_SNAP_TOLERANCE * rate:
        return float(nearest)
    return rate


def read_bvh(path: str | Path, scale: float = CMU_BVH_SCALE) -> MocapClip:
    """Read a BVH file into a :class:`~prohmr.data.mocap.skeleton.MocapClip`.

    Arguments:
        path: the ``.bvh`` file (read as latin-1 text).
        scale: metres per file length unit (default: the CMU conversions' unit).

    Returns:
        The clip: joints in file order plus ``"<joint>_end"`` end sites, offsets and root
        translations in metres, local rotations ``(T, J, 3, 3)``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: malformed content; the message names the file and line number.

    Example:
        >>> import tempfile
        >>> text = '''HIERARCHY
        ... ROOT hips
        ... {
        ...   OFFSET 0 0 0
        ...   CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
        ...   End Site
        ...   {
        ...     OFFSET 0 10 0
        ...   }
        ... }
        ... MOTION
        ... Frames: 1
        ... Frame Time: 0.0333333
        ... 1 2 3 90 0 0
        ... '''
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     bvh_path = Path(folder) / "tiny.bvh"
        ...     _ = bvh_path.write_text(text)
        ...     clip = read_bvh(bvh_path, scale=0.01)
        >>> clip.joint_names, clip.frame_rate
        (('hips', 'hips_end'), 30.0)
        >>> np.round(clip.positions()[0], 6).tolist()
        [[0.01, 0.02, 0.03], [-0.09, 0.02, 0.03]]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mocap file not found: {path}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: expected a positive number, got {scale}")
    lines = path.read_text(encoding="latin-1").splitlines()

    header: list[tuple[str, int]] = []
    motion_line = None
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if words and words[0].upper() == "MOTION":
            motion_line = number
            header.extend((word, number) for word in words[1:])
            break
        header.extend((word, number) for word in words)
    if motion_line is None:
        raise ValueError(f"{path.name} line {len(lines)}: no MOTION section")
    joints = _parse_hierarchy(_Tokens(path.name, header))

    number, num_frames, frame_time = _parse_motion_header(path.name, lines, motion_line)
    num_channels = sum(len(joint.channels) for joint in joints)
    rows: list[list[str]] = []
    row_lines: list[int] = []
    for number, line in enumerate(lines[number:], start=number + 1):
        words = line.split()
        if not words:
            continue
        if len(words) != num_channels:
            raise ValueError(
                f"{path.name} line {number}: expected {num_channels} channel values, "
                f"got {len(words)}"
            )
        if len(rows) == num_frames:
            raise ValueError(f"{path.name} line {number}: more frames than 'Frames: {num_frames}'")
        rows.append(words)
        row_lines.append(number)
    if len(rows) != num_frames or num_frames == 0:
        raise ValueError(
            f"{path.name} line {len(lines)}: 'Frames: {num_frames}' but {len(rows)} frame lines"
        )
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        bad = next(i for i, row in enumerate(rows) if not _all_floats(row))
        raise ValueError(f"{path.name} line {row_lines[bad]}: unreadable channel value") from None
    return _build_clip(path, joints, values, frame_time, scale)


def _parse_motion_header(
    file_name: str, lines: list[str], motion_line: int
) -> tuple[int, int, float]:
    """Read ``Frames:`` and ``Frame Time:``; return (last header line, frames, frame time)."""
    entries: dict[str, tuple[str, int]] = {}
    number = motion_line
    while len(entries) < 2 and number < len(lines):
        number += 1
        text = lines[number - 1].strip()
        if not text:
            continue
        label, _, value = text.partition(":")
        key = " ".join(label.split()).lower()
        if key not in ("frames", "frame time"):
            raise ValueError(
                f"{file_name} line {number}: expected 'Frames:' or 'Frame Time:', got {text!r}"
            )
        entries[key] = (value.strip(), number)
    if len(entries) < 2:
        raise ValueError(f"{file_name} line {number}: missing 'Frames:' or 'Frame Time:'")
    frames_text, frames_line = entries["frames"]
    time_text, time_line = entries["frame time"]
    try:
        num_frames = int(frames_text)
    except ValueError:
        raise ValueError(
            f"{file_name} line {frames_line}: bad frame count {frames_text!r}"
        ) from None
    try:
        frame_time = float(time_text)
    except ValueError:
        raise ValueError(f"{file_name} line {time_line}: bad frame time {time_text!r}") from None
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise ValueError(f"{file_name} line {time_line}: frame time must be positive")
    return number, num_frames, frame_time


def _all_floats(words: list[str]) -> bool:
    try:
        [float(w) for w in words]
    except ValueError:
        return False
    return True


def _build_clip(
    path: Path, joints: list[_Joint], values: np.ndarray, frame_time: float, scale: float
) -> MocapClip:
    num_frames = values.shape[0]
    rotations = np.broadcast_to(np.eye(3), (num_frames, len(joints), 3, 3)).copy()
    translations = np.zeros((num_frames, 3))
    column = 0
    for j, joint in enumerate(joints):
        block = values[:, column : column + len(joint.channels)]
        column += len(joint.channels)
        rotation_columns = [k for k, (kind, _) in enumerate(joint.channels) if kind == "rotation"]
        position_columns = [k for k, (kind, _) in enumerate(joint.channels) if kind == "position"]
        if rotation_columns:
            order = "".join(joint.channels[k][1] for k in rotation_columns)
            rotations[:, j] = euler_to_matrix(np.deg2rad(block[:, rotation_columns]), order)
        if position_columns and j == 0:
            for k in position_columns:
                translations[:, "xyz".index(joint.channels[k][1])] = block[:, k] * scale
        elif position_columns:
            logger.warning(
                "%s line %d: position channels of joint %r are ignored (rigid skeleton)",
                path.name,
                joint.line,
                joint.name,
            )
    skeleton = Skeleton(
        tuple(joint.name for joint in joints),
        np.array([joint.parent for joint in joints]),
        np.stack([joint.offset for joint in joints]) * scale,
    )
    return MocapClip(skeleton, rotations, translations, _snap_frame_rate(frame_time), path.stem)
