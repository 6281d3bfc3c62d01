"""A user's rig, added without code: a TOML mapping file -> ``RigFamily``.

```toml
name = "studio-2019"        # shown in reports
prefix = "Character1_"      # optional: removed from the start of every joint name (a regular expression)
head = "Head"               # the joint at the skull base: the nose and ears are placed in its frame, and the head
                            # top follows from the ears (model.pose.joint_formulas), as for every source
skull_base_above_head_mm = 0.0   # optional: when ``head`` is lower (a neck joint), how far up the skull base is
toes = ["LeftToe", "RightToe"]   # optional: where the feet point; default: each ankle's end site

[head_frame]                # which signed axis of the head joint's own frame points up, forward, to the left
up = "+Y"                   # (for a rig with identity joint frames at rest, Y up and facing +Z: +Y, +Z, +X)
forward = "+Z"
left = "+X"

[joints]                    # every limb landmark -> joint name (without the prefix)
l_hip = "LeftThigh"
# ... r_hip, l_knee, r_knee, l_ankle, r_ankle, l_shoulder, r_shoulder, l_elbow, r_elbow, l_wrist, r_wrist
```
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tomllib

from index_builder.errors import ConfigError
from index_builder.ingest.mocap_skeletons import FACE_OFFSETS_MM, HeadFrame, MocapMapping
from index_builder.ingest.rigs import RigFamily
from model.pose.joint_layouts import LANDMARKS

LIMB_LANDMARKS = tuple(name for name in LANDMARKS if name not in FACE_OFFSETS_MM)
KNOWN_KEYS = {"name", "prefix", "head", "skull_base_above_head_mm", "toes", "head_frame", "joints"}
_AXIS = re.compile(r"^[+-][XYZ]$")


def load_user_mapping(path: Path) -> RigFamily:
    """Read and validate one mapping file; raises ConfigError naming the file and the fault."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the mapping: {err}") from err
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})")
    joints = data.get("joints", {})
    missing = [name for name in LIMB_LANDMARKS if not isinstance(joints.get(name), str)]
    extra = sorted(set(joints) - set(LIMB_LANDMARKS))
    if missing or extra or not isinstance(data.get("head"), str) or not isinstance(data.get("name"), str):
        raise ConfigError(f"{path}: needs name, head and [joints] for {', '.join(LIMB_LANDMARKS)}"
                          + (f"; missing {', '.join(missing)}" if missing else "")
                          + (f"; unknown landmarks {', '.join(extra)}" if extra else ""))
    frame = data.get("head_frame", {"up": "+Y", "forward": "+Z", "left": "+X"})
    axes = [frame.get(k) for k in ("up", "forward", "left")]
    if not all(isinstance(a, str) and _AXIS.match(a) for a in axes) or len({a[-1] for a in axes}) != 3:
        raise ConfigError(f"{path}: [head_frame] up, forward and left must be three different signed axes "
                          f"such as '+Y', '+Z', '+X'; got {axes}")
    head_frame = HeadFrame(up=axes[0], forward=axes[1], left=axes[2])
    if np.linalg.det(head_frame.basis()) < 0:
        raise ConfigError(f"{path}: [head_frame] is left-handed (left must be up x forward): the face would be "
                          "mirrored")
    lift = float(data.get("skull_base_above_head_mm", 0.0))
    toes = data.get("toes")
    if toes is not None and (not isinstance(toes, list) or len(toes) != 2 or not all(isinstance(t, str) for t in toes)):
        raise ConfigError(f"{path}: toes must be two joint names [left, right]")
    mapping = MocapMapping(
        name=data["name"],
        limbs={name: joints[name] for name in LIMB_LANDMARKS},
        head=data["head"],
        head_frame=head_frame,
        face_offsets_mm={k: (x, y + lift, z) for k, (x, y, z) in FACE_OFFSETS_MM.items()},
    )
    return RigFamily(name=data["name"], mapping=mapping, prefix=data.get("prefix", ""),
                     toes=tuple(toes) if toes else None)
