"""BVH rig families: recognised by their joint names and hierarchy, each mapped to the shared landmarks.

A family is a ``MocapMapping`` (``index_builder.ingest.mocap_skeletons``: limbs, head joint and its frame) plus what
recognition needs: a name prefix some exporters add (``mixamorig:``) and the toe joints that show where each foot
points (for the left/right check). The built-in families are tried in ``BUILTIN_FAMILIES`` order after any user
family (``index_builder.ingest.user_mapping``); the first whose joints are all present, with every limb chain
(hip above knee above ankle, shoulder above elbow above wrist) in that order in the hierarchy, is the rig.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index_builder.errors import UnknownRigError
from index_builder.ingest.bvh import BvhSkeleton
from index_builder.ingest.mocap_skeletons import BANDAI, CMU, ICLONE, MOCAPBANK, MocapMapping

LIMB_CHAINS = tuple((f"{s}_hip", f"{s}_knee", f"{s}_ankle") for s in "lr") + tuple(
    (f"{s}_shoulder", f"{s}_elbow", f"{s}_wrist") for s in "lr"
)
MAX_NAMED_MISSING = 8  # joints named in an unknown-rig message


@dataclass(frozen=True)
class RigFamily:
    """One naming of BVH skeletons.

    name: shown in reports (``bandai``, ``cmu``, ...).
    mapping: landmark -> joint, head joint and its frame; joint names without ``prefix``.
    prefix: regular expression removed from the start of every joint name before matching ('' for none); when
        set, at least one joint must carry it.
    toes: (left, right) joints ahead of the ankles; None: each ankle's end site shows where the foot points.
    """

    name: str
    mapping: MocapMapping
    prefix: str = ""
    toes: tuple[str, str] | None = None

    def roles(self) -> dict[str, str]:
        """Every joint the family needs: landmark (or ``head``, ``l_toe``, ``r_toe``) -> joint name."""
        out = dict(self.mapping.limbs) | {"head": self.mapping.head}
        if self.toes is not None:
            out |= {"l_toe": self.toes[0], "r_toe": self.toes[1]}
        return out

    def plain_names(self, names: tuple[str, ...]) -> tuple[str, ...] | None:
        """The joint names with the prefix removed; None when the family has a prefix that no joint carries."""
        if not self.prefix:
            return names
        pattern = re.compile(f"^(?:{self.prefix})")
        if not any(pattern.match(n) for n in names):
            return None
        return tuple(pattern.sub("", n, count=1) for n in names)


BUILTIN_FAMILIES = (
    RigFamily("bandai", BANDAI, toes=("Toes_L", "Toes_R")),
    RigFamily("iclone", ICLONE, toes=("CC_Base_L_ToeBase", "CC_Base_R_ToeBase")),
    RigFamily("mixamo", CMU, prefix=r"mixamorig\d*:", toes=("LeftToeBase", "RightToeBase")),
    # CMU's common BVH conversion; also any rig with the same Biovision-style names (LeftUpLeg, LeftForeArm, ...).
    RigFamily("cmu", CMU, toes=("LeftToeBase", "RightToeBase")),
    RigFamily("mocapbank", MOCAPBANK),
)


def _is_ancestor(parents, above: int, below: int) -> bool:
    node = int(parents[below])
    while node >= 0:
        if node == above:
            return True
        node = int(parents[node])
    return False


def _problems(family: RigFamily, skeleton: BvhSkeleton) -> tuple[tuple[str, ...] | None, list[str]]:
    """(plain names, what keeps the family from mapping this skeleton); an empty list means it maps."""
    names = family.plain_names(skeleton.names)
    if names is None:
        return None, [f"no joint name starts with {family.prefix!r}"]
    index = {n: i for i, n in enumerate(names)}
    roles = family.roles()
    missing = [f"{joint} ({role})" for role, joint in roles.items() if joint not in index]
    if missing:
        return names, missing
    out_of_order = [
        f"{roles[a]} is not above {roles[b]}"
        for chain in LIMB_CHAINS
        for a, b in zip(chain, chain[1:])
        if not _is_ancestor(skeleton.parents, index[roles[a]], index[roles[b]])
    ]
    return names, out_of_order


def recognise_rig(skeleton: BvhSkeleton, source: str,
                  families: tuple[RigFamily, ...] = ()) -> tuple[RigFamily, tuple[str, ...]]:
    """The first family (user families, then ``BUILTIN_FAMILIES``) that maps the skeleton, and the joint names as
    that family spells them (prefix removed).

    Raises UnknownRigError naming, for the closest family, the joints that could not be mapped.
    """
    tried = families + BUILTIN_FAMILIES
    closest: tuple[int, RigFamily, list[str]] | None = None
    for family in tried:
        names, problems = _problems(family, skeleton)
        if not problems:
            return family, names
        rank = len(problems) if names is not None else len(family.roles()) + 1  # a prefix no joint has: far
        if closest is None or rank < closest[0]:
            closest = (rank, family, problems)
    _, family, problems = closest
    shown = ", ".join(problems[:MAX_NAMED_MISSING]) + (", ..." if len(problems) > MAX_NAMED_MISSING else "")
    raise UnknownRigError(
        source,
        f"unknown rig (tried {', '.join(f.name for f in tried)}); closest is {family.name}, which lacks {shown}; "
        "add a mapping file (--mapping rig.toml)",
    )
