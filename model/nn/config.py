"""Hyperparameters of the networks, as dataclasses stored inside every checkpoint (torch-free)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

FEATURES_PER_JOINT = 3  # pose2d: x, y, confidence; image: x, y, visibility; pose3d: x, y, z


@dataclass(frozen=True)
class EncoderConfig:
    num_joints: int = 17
    embed_dim: int = 128  # D: size of the shared, L2-normalised embedding
    width: int = 512  # hidden width of the residual MLP trunk
    blocks: int = 2  # residual blocks in the trunk
    token_dim: int = 32  # size of the per-modality representation token
    dropout: float = 0.1
    shared_trunk: bool = True  # one trunk for all modalities (told apart by the token) or one per modality


@dataclass(frozen=True)
class DecoderConfig:
    width: int = 512
    blocks: int = 2
    dropout: float = 0.1


@dataclass(frozen=True)
class ModelConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    init_logit_scale: float = 2.659  # log(1 / 0.07), CLIP's initial temperature

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(encoder=EncoderConfig(**data["encoder"]), decoder=DecoderConfig(**data["decoder"]),
                   init_logit_scale=data["init_logit_scale"])


@dataclass(frozen=True)
class MartinezConfig:
    """Martinez et al. 2017, "A simple yet effective baseline for 3d human pose estimation"."""

    num_joints: int = 17
    width: int = 1024
    blocks: int = 2
    dropout: float = 0.5
    max_norm: float = 1.0  # per-unit weight norm cap, as in the paper's code

    def to_dict(self) -> dict:
        return asdict(self)
