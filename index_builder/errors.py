"""Errors the builder reports as one line (the CLI maps every BuildError to a message and exit code 1)."""


class BuildError(Exception):
    """Base class of every error the builder reports to its user."""


class DataFileError(BuildError):
    """A data file is malformed: the message names the file and the problem."""

    def __init__(self, source: str, problem: str):
        super().__init__(source, problem)
        self.source = source
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}"


class BvhParseError(DataFileError):
    """A BVH file that cannot be parsed."""


class ConfigError(BuildError):
    """A configuration value or a combination of them is invalid."""


class ArtifactError(BuildError):
    """A cache, checkpoint or bundle is missing, stale or fails verification."""


class UnknownRigError(DataFileError):
    """A BVH skeleton that no rig family (built-in or from a mapping file) maps: the message names the joints."""


class ClipCheckError(DataFileError):
    """A clip that parsed but fails a sanity check (left/right, standing height, rigid bones, no frames)."""
