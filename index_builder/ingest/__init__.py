"""Ingest a motion library (BVH of the common rigs, DeepMimic, CMU exponential maps, h36m17 arrays) into one
``MotionDatabase``: ``ingest(paths, IngestConfig(...))``, or ``unihpr-build ingest`` on the command line.

    pipeline.py, clip_steps.py   the run: files found and labelled, one file through every step, bad files skipped
    config.py, labels.py         what a run is told; which files are clips, their names and labels
    file_formats.py              which reader takes a file; the readers: ``bvh_reader.py``, ``deepmimic_reader.py``,
                                 ``cmu_expmap_reader.py``, ``joint_arrays_reader.py`` (``skeleton_files.py``: the
                                 steps the readers with a skeleton file share), each delivering a ``MotionClip``
    bvh.py, rotations.py         BVH parsing and forward kinematics; rotation parameterisations
    rigs.py, mocap_skeletons.py, user_mapping.py  rig families, their joints -> the shared landmarks, a user's rig
    units.py, resampling.py, clip_checks.py  unit and up axis, frame rate, the checks that skip a clip
    summary.py, commands.py      what a run tells its user; ``unihpr-build ingest``
"""

from index_builder.ingest.config import IngestConfig
from index_builder.ingest.pipeline import IngestRun, ingest
from index_builder.ingest.rigs import BUILTIN_FAMILIES, RigFamily, recognise_rig
from index_builder.ingest.user_mapping import load_user_mapping

__all__ = ["BUILTIN_FAMILIES", "IngestConfig", "IngestRun", "RigFamily", "ingest", "load_user_mapping", "recognise_rig"]
