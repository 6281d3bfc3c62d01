"""Training runs as typed configs: the default model, the reduced-budget design/seed studies, and the tiny test.

A config is saved inside every checkpoint and beside every report; ``resolve_config`` turns a preset name plus
``key=value`` overrides into one, refusing unknown keys and values of the wrong type.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from index_builder.errors import ConfigError
from index_builder.training.batches import AugmentConfig
from index_builder.training.pose_augmentation import ABLATION_ARMS
from model.nn.config import DecoderConfig, EncoderConfig, MartinezConfig, ModelConfig

LOSSES = ("singular_value", "pairwise")
DECODE_MODES = ("frozen", "finetune")


@dataclass(frozen=True)
class TrainConfig:
    name: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    # The alignment loss: "singular_value" (UniHPR's) or "pairwise" InfoNCE. The seed study (reports/eval.md) found
    # pairwise-only at least as good at the reduced budget, so the default uses it.
    loss: str = "pairwise"
    pairwise_weight: float = 0.0  # pairwise InfoNCE added to the singular-value loss
    batch_size: int = 256
    align_steps: int = 8000  # step 1: contrastive alignment of the three encoders
    decode_steps: int = 4000  # step 2: the decoders on the embeddings
    decode_mode: str = "finetune"  # step 2 keeps the encoders "frozen" or "finetune"s them (alignment loss kept)
    decode_align_weight: float = 0.5  # weight of the alignment loss while fine-tuning in step 2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    frame_step: int = 3  # train on every 3rd frame: 30 fps -> 10 fps
    seed: int = 0
    # The training poses: the Bandai cache's train split, less the clips of these contents (the unseen-motion
    # protocol trains without them), plus the train split of these extra-mocap sources (``index_builder.datasets.extra_mocap``).
    exclude_contents: tuple[str, ...] = ()
    extra_data: tuple[str, ...] = ()
    extra_share: float = 0.25  # about this share of the training poses drawn from extra_data (clips repeated)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    martinez: MartinezConfig = field(default_factory=MartinezConfig)
    martinez_batch_size: int = 256
    martinez_max_steps: int = 24000  # cap of the early-stopped baseline: twice UniHPR's budget
    martinez_patience: int = 5  # validations without improvement before stopping
    validate_every: int = 1000
    checkpoint_every: int = 1000
    val_poses: int = 2000

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.decode_mode not in DECODE_MODES:
            raise ConfigError(f"decode_mode must be one of {DECODE_MODES}, got {self.decode_mode!r}")
        if not 0 <= self.extra_share < 1:
            raise ConfigError(f"extra_share must be in [0, 1), got {self.extra_share}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be at least 2 (contrastive losses need negatives)")

    @property
    def poses_drawn(self) -> int:
        """Training poses drawn over both UniHPR steps: the budget the same-budget baseline gets."""
        return self.batch_size * (self.align_steps + self.decode_steps)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


_NESTED = {"model": ModelConfig, "augment": AugmentConfig, "martinez": MartinezConfig,
           "encoder": EncoderConfig, "decoder": DecoderConfig}


def config_from_dict(data: dict, cls=TrainConfig):
    """Inverse of ``asdict``; unknown keys raise ConfigError."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    kwargs = {k: config_from_dict(v, _NESTED[k]) if k in _NESTED else (tuple(v) if isinstance(v, list) else v)
              for k, v in data.items()}
    return cls(**kwargs)


DEFAULT = TrainConfig()

# The design and seed studies: the same recipe at a budget of a few minutes per run on 2 cores.
STUDY = replace(DEFAULT, name="study", align_steps=1500, decode_steps=500, validate_every=500, checkpoint_every=500,
                val_poses=1000)

# The tests: a tiny network that trains in seconds.
TINY = replace(
    DEFAULT,
    name="tiny",
    model=ModelConfig(encoder=EncoderConfig(width=64, blocks=1, token_dim=8, embed_dim=32),
                      decoder=DecoderConfig(width=64, blocks=1)),
    batch_size=64,
    align_steps=60,
    decode_steps=40,
    warmup_steps=10,
    validate_every=50,
    checkpoint_every=50,
    val_poses=200,
    martinez=MartinezConfig(width=64, blocks=1),
    martinez_batch_size=64,
    martinez_max_steps=200,
    martinez_patience=2,
)

PRESETS = {c.name: c for c in (DEFAULT, STUDY, TINY)}

# The generalisation study (issue 15): arms at the STUDY budget, each a list of overrides of the recipe. "baseline"
# is the recipe as it is; the augmentation arms add one part of ``index_builder.training.pose_augmentation`` each ("all":
# every part); "extra_mocap" adds the two CMU sources of extra-mocap (DeepMimic stays unseen); "unseen_motion"
# leaves out the contents that only Bandai dataset-1 has (``unseen_motion_contents``).
EXTRA_TRAINING_SOURCES = ("iclone-cmu", "dmgnn-cmu")
# Arms with a Martinez trained on the same poses and augmentation: the protocols' baselines of record.
MARTINEZ_ARMS = ("baseline", "unseen_motion", "all", "combined")
# The parts that paid for themselves in the first round of the study, on the extra mocap: the candidate recipe.
COMBINED_AUGMENT = ("augment.joint_angle_deg=20", "augment.width_scale=0.9,2.1", "augment.body_fraction=0.5")


def _overrides(values: dict[str, object]) -> list[str]:
    return [f"augment.{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in values.items()]


def generalisation_arms(unseen_contents: tuple[str, ...]) -> dict[str, list[str]]:
    """arm name -> config overrides on the STUDY preset."""
    return {"baseline": [], **{name: _overrides(values) for name, values in ABLATION_ARMS.items()},
            "extra_mocap": [f"extra_data={','.join(EXTRA_TRAINING_SOURCES)}"],
            "combined": [f"extra_data={','.join(EXTRA_TRAINING_SOURCES)}", *COMBINED_AUGMENT],
            "unseen_motion": [f"exclude_contents={','.join(unseen_contents)}"]}


def unseen_motion_contents(clips_dataset, clips_content, dataset: str = "dataset-1") -> tuple[str, ...]:
    """The contents that only ``dataset`` has (the issue names them; computed so that the labels decide)."""
    ours = set(np.asarray(clips_content)[np.asarray(clips_dataset) == dataset].tolist())
    others = set(np.asarray(clips_content)[np.asarray(clips_dataset) != dataset].tolist())
    return tuple(sorted(ours - others))


def _parse_value(text: str, current):
    if isinstance(current, tuple) and all(isinstance(v, str) for v in current):  # names: any number, comma-separated
        return tuple(v.strip() for v in text.split(",") if v.strip())
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"expected true/false, got {text!r}")
        return text.lower() in ("true", "1")
    if isinstance(current, tuple):  # comma-separated, as many values as the default, each of its element's type
        parts = text.strip("()").split(",")
        if len(parts) != len(current):
            raise ConfigError(f"expected {len(current)} comma-separated values, got {text!r}")
        return tuple(_parse_value(part.strip(), element) for part, element in zip(parts, current))
    try:
        return type(current)(text)
    except (TypeError, ValueError):
        raise ConfigError(f"expected {type(current).__name__}, got {text!r}") from None


def resolve_config(preset: str, overrides: list[str]) -> TrainConfig:
    """A preset with ``key=value`` overrides; nested keys use dots (``model.encoder.width=256``)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    data = PRESETS[preset].to_dict()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value")
        node = data
        *path, leaf = key.split(".")
        for part in path:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config key {key!r}")
            node = node[part]
        if leaf not in node or isinstance(node[leaf], dict):
            raise ConfigError(f"unknown config key {key!r}")
        try:
            node[leaf] = _parse_value(text, node[leaf])
        except ConfigError as err:
            raise ConfigError(f"{key}: {err}") from None
    return config_from_dict(data)
