"""The torch layer: UniHPR's networks and losses, the Martinez baseline, the checkpoint format and ONNX export.
Only the builder imports it; the service runs the exported graphs (``model.runtime``)."""

from model.nn.checkpoint import CheckpointError, load_martinez, load_unihpr, read_checkpoint, save_checkpoint
from model.nn.config import DecoderConfig, EncoderConfig, MartinezConfig, ModelConfig
from model.nn.losses import DecoderLoss, PairwiseInfoNCE, SingularValueLoss, singular_value_logits
from model.nn.martinez import MartinezLifter
from model.nn.networks import UniHPR
from model.nn.onnx_export import export_model

__all__ = [
    "CheckpointError", "DecoderConfig", "DecoderLoss", "EncoderConfig", "MartinezConfig", "MartinezLifter",
    "ModelConfig", "PairwiseInfoNCE", "SingularValueLoss", "UniHPR", "export_model", "load_martinez", "load_unihpr",
    "read_checkpoint", "save_checkpoint", "singular_value_logits",
]
