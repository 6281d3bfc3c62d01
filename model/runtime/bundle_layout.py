"""The bundle's directory: its file names, its ONNX graphs and the error a faulty bundle raises.

``model.runtime.bundle_format`` describes every file; this module only names them.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_HASH = "manifest.sha256"
INDEX, POSES, VIEW_ROTATIONS, METADATA = "index.faiss", "poses.npy", "view_rotations.npy", "metadata.npz"
BLAZEPOSE = {
    "pose_detection.tflite": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "pose_landmark_full.tflite": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
METADATA_KEYS = ("clip", "frame", "clip_name", "clip_dataset", "clip_content", "clip_style", "clip_source",
                 "clip_fps")
REBUILD_HINT = "rebuild it with `unihpr-build index --out DIR`"


class BundleError(Exception):
    """The bundle is missing, malformed or fails its hashes; the message names the file and the fault.

    field: the manifest field at fault (``index.operating_point.nprobe``), when one is.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------------------------------------- graphs


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of the bundle, batch dimension first on both sides.

    modality: the encoder's input modality ((J, 3) features -> (D,) embedding); None for a decoder
        ((D,) embedding -> (J, out_width)).
    """

    name: str
    modality: str | None = None
    out_width: int = 0

    @property
    def filename(self) -> str:
        return f"{self.name}.onnx"

    def shapes(self, joints: int, dim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(input shape, output shape) without the batch dimension."""
        if self.modality is not None:
            return (joints, 3), (dim,)
        return (dim,), (joints, self.out_width)


GRAPHS: dict[str, GraphSpec] = {g.name: g for g in (
    GraphSpec("encoder_image", modality="image"),
    GraphSpec("encoder_pose2d", modality="pose2d"),
    GraphSpec("encoder_pose3d", modality="pose3d"),
    GraphSpec("decoder3d", out_width=3),  # metres, root-relative camera frame
    GraphSpec("decoder2d", out_width=2),  # normalised 2D like the pose2d input
)}
ENCODERS = {g.modality: g.filename for g in GRAPHS.values() if g.modality is not None}  # modality -> file
DECODER3D, DECODER2D = GRAPHS["decoder3d"].filename, GRAPHS["decoder2d"].filename
REQUIRED_FILES = (*(g.filename for g in GRAPHS.values()), INDEX, POSES, VIEW_ROTATIONS, METADATA, *BLAZEPOSE)
