"""The checkpoint format: a network rebuilt from its own file, version 1 files still read, faults named."""

import pytest
import torch

from model.nn.checkpoint import CheckpointError, load_martinez, load_unihpr, read_checkpoint, save_checkpoint
from model.nn.config import DecoderConfig, EncoderConfig, MartinezConfig, ModelConfig
from model.nn.martinez import MartinezLifter
from model.nn.networks import UniHPR

TINY = ModelConfig(encoder=EncoderConfig(embed_dim=8, width=16, blocks=1, token_dim=4),
                   decoder=DecoderConfig(width=16, blocks=1))


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_network_is_rebuilt_from_its_model_args(tmp_path):
    model = UniHPR(TINY).eval()
    save_checkpoint(tmp_path / "u.pt", "unihpr", TINY.to_dict(), model.state_dict(), {"step": 3})
    loaded = load_unihpr(tmp_path / "u.pt")
    assert loaded.config == TINY and _same_weights(model, loaded) and not loaded.training
    assert read_checkpoint(tmp_path / "u.pt")["run"] == {"step": 3}


def test_a_version_1_file_reads_its_model_args_from_the_train_config(tmp_path):
    martinez = MartinezConfig(width=32, blocks=1)
    model = MartinezLifter(martinez)
    torch.save({"format_version": 1, "config": {"model": TINY.to_dict(), "martinez": martinez.to_dict()},
                "model": model.state_dict(), "phase": "done"}, tmp_path / "old.pt")
    assert _same_weights(model, load_martinez(tmp_path / "old.pt"))
    assert read_checkpoint(tmp_path / "old.pt")["run"]["phase"] == "done"


def test_faults_name_the_file(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"format_version": 7}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version"):
        read_checkpoint(tmp_path / "future.pt")
    save_checkpoint(tmp_path / "m.pt", "martinez", MartinezConfig(width=32, blocks=1).to_dict(),
                    MartinezLifter(MartinezConfig(width=32, blocks=1)).state_dict(), {})
    with pytest.raises(CheckpointError, match="holds a martinez network"):
        load_unihpr(tmp_path / "m.pt")
