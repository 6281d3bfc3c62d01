"""Ingest a motion library (BVH of the common rigs, DeepMimic, CMU exponential maps, h36m17 arrays) into one
``MotionDatabase``: ``ingest(paths, IngestConfig(...))``, or ``unihpr-build ingest`` on the command line."""

from index_builder.ingest.config import IngestConfig
from index_builder.ingest.pipeline import IngestRun, ingest
from index_builder.ingest.rigs import BUILTIN_FAMILIES, RigFamily, recognise_rig
from index_builder.ingest.user_mapping import load_user_mapping

__all__ = ["BUILTIN_FAMILIES", "IngestConfig", "IngestRun", "RigFamily", "ingest", "load_user_mapping", "recognise_rig"]
