"""The UniHPR networks: encoders with per-modality representation tokens, and the 3D and 2D decoders.

Every modality arrives as (B, 17, 3) features (see ``model.pose.features``): normalised 2D keypoints with a confidence,
normalised BlazePose-derived keypoints with a visibility, or root-relative camera-frame 3D in metres. Encoders map
them to (B, D) L2-normalised embeddings in one shared space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.nn.config import FEATURES_PER_JOINT, DecoderConfig, EncoderConfig, ModelConfig
from model.pose.features import MODALITIES
from model.pose.units import MM_PER_M


class ResidualBlock(nn.Module):
    """Pre-norm residual MLP block: x + W2 gelu(W1 norm(x))."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(self.dropout(F.gelu(self.fc1(self.norm(x)))))


class ResidualMLP(nn.Module):
    """in_dim -> width -> blocks x ResidualBlock -> norm -> out_dim."""

    def __init__(self, in_dim: int, out_dim: int, width: int, blocks: int, dropout: float):
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, dropout) for _ in range(blocks)))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.norm(self.blocks(self.inp(x))))


class PoseEncoder(nn.Module):
    """Features of any modality -> L2-normalised embedding.

    The representation token (one learned vector per modality, as in UniHPR) is concatenated to the flattened
    features, so one trunk can tell which modality it is reading. With ``shared_trunk=False`` each modality gets
    its own trunk and the token only adds a constant.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(len(MODALITIES), config.token_dim)
        in_dim = config.num_joints * FEATURES_PER_JOINT + config.token_dim

        def trunk() -> ResidualMLP:
            return ResidualMLP(in_dim, config.embed_dim, config.width, config.blocks, config.dropout)

        names = ["shared"] if config.shared_trunk else list(MODALITIES)
        self.trunks = nn.ModuleDict({name: trunk() for name in names})

    def forward(self, features: Tensor, modality: str) -> Tensor:
        """features: (B, 17, 3) float32 -> (B, D) float32, L2-normalised."""
        B, J, C = features.shape
        assert (J, C) == (self.config.num_joints, FEATURES_PER_JOINT), f"expected (B, 17, 3), got {features.shape}"
        token = self.tokens.weight[MODALITIES.index(modality)].expand(B, -1)  # (B, token_dim)
        x = torch.cat([features.reshape(B, J * C), token], dim=-1)
        trunk = self.trunks["shared" if self.config.shared_trunk else modality]
        return F.normalize(trunk(x), dim=-1)


class Pose3dDecoder(nn.Module):
    """Embedding -> root-relative camera-frame 3D pose, mm. The pelvis is fixed at the origin."""

    def __init__(self, embed_dim: int, num_joints: int, config: DecoderConfig):
        super().__init__()
        self.num_joints = num_joints
        self.mlp = ResidualMLP(embed_dim, (num_joints - 1) * 3, config.width, config.blocks, config.dropout)

    def metres(self, embedding: Tensor) -> Tensor:
        """embedding: (B, D) -> (B, 17, 3) float32 metres, pelvis = 0 (the network's own unit; ONNX exports this)."""
        B = embedding.shape[0]
        rest = self.mlp(embedding).reshape(B, self.num_joints - 1, 3)
        return torch.cat([rest.new_zeros(B, 1, 3), rest], dim=1)

    def forward(self, embedding: Tensor) -> Tensor:
        """embedding: (B, D) -> (B, 17, 3) float32 mm, pelvis = 0."""
        return self.metres(embedding) * MM_PER_M  # the decoder predicts metres


class Pose2dDecoder(nn.Module):
    """Embedding -> normalised 2D keypoints (the box of the pose maps to [-1, 1])."""

    def __init__(self, embed_dim: int, num_joints: int, config: DecoderConfig):
        super().__init__()
        self.num_joints = num_joints
        self.mlp = ResidualMLP(embed_dim, num_joints * 2, config.width, config.blocks, config.dropout)

    def forward(self, embedding: Tensor) -> Tensor:
        """embedding: (B, D) -> (B, 17, 2) float32, normalised."""
        return self.mlp(embedding).reshape(embedding.shape[0], self.num_joints, 2)


class UniHPR(nn.Module):
    """Encoders, decoders and the learned contrastive temperature."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        enc = config.encoder
        self.encoder = PoseEncoder(enc)
        self.decoder3d = Pose3dDecoder(enc.embed_dim, enc.num_joints, config.decoder)
        self.decoder2d = Pose2dDecoder(enc.embed_dim, enc.num_joints, config.decoder)
        self.logit_scale = nn.Parameter(torch.tensor(config.init_logit_scale))

    def encode(self, features: Tensor, modality: str) -> Tensor:
        """features: (B, 17, 3) -> (B, D) L2-normalised."""
        return self.encoder(features, modality)

    def lift(self, features: Tensor, modality: str) -> Tensor:
        """features: (B, 17, 3) -> (B, 17, 3) mm, root-relative camera frame."""
        return self.decoder3d(self.encode(features, modality))


class Pose3dDecoderMetres(nn.Module):
    """The 3D decoder with metre outputs, as exported: float32 keeps ~7 digits, so a parity check in mm would
    measure rounding, not the graph."""

    def __init__(self, decoder: Pose3dDecoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, embedding: Tensor) -> Tensor:
        return self.decoder.metres(embedding)


class ModalityEncoder(nn.Module):
    """One modality's encoder as a standalone module with a fixed modality (what ONNX export needs)."""

    def __init__(self, model: UniHPR, modality: str):
        super().__init__()
        self.encoder = model.encoder
        self.modality = modality

    def forward(self, features: Tensor) -> Tensor:
        return self.encoder(features, self.modality)
