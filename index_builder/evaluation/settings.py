"""``EvalSettings`` used to be here: it is part of a run's config now (``index_builder.training.config``), so a
run is evaluated with the settings it was configured with."""

from index_builder.training.config import EvalSettings

__all__ = ["EvalSettings"]
