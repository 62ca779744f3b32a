"""Checkpoints: atomic folders, clear errors for damaged or mismatched ones, averaging."""

from pathlib import Path

import pytest
import torch

from aiayn import ModelConfig, Transformer
from aiayn.runs import (
    CheckpointError,
    RunDir,
    average_checkpoints,
    load_trainer_state,
    load_weights,
    prune_checkpoints,
    save_checkpoint,
    step_checkpoints,
)


def model(seed: int, **overrides) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(ModelConfig.tiny(30, 30, tie_output=True, **overrides))


def test_save_and_load_round_trip(tmp_path) -> None:
    a, b = model(0), model(1)
    path = save_checkpoint(tmp_path / "step-00000001", a, a.config, {"x": 1}, {"step": 1})
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary left
    load_weights(path, b, b.config)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert b.generator.weight is b.tgt_embed.weight  # tying survives loading
    assert load_trainer_state(path) == {"x": 1}


def test_truncated_weights_give_a_clear_error(tmp_path) -> None:
    a = model(0)
    path = save_checkpoint(tmp_path / "step-00000001", a, a.config, {"x": 1}, {})
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_weights(path, model(1))
    (path / "trainer.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"trainer\.pt"):
        load_trainer_state(path)


def test_checkpoint_of_another_config_is_refused(tmp_path) -> None:
    a = model(0)
    path = save_checkpoint(tmp_path / "c", a, a.config, None, {})
    other = model(0, d_ff=96)
    with pytest.raises(CheckpointError, match="another model config"):
        load_weights(path, other, other.config)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_weights(path, other)  # no config given: the shapes still refuse
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(tmp_path / "missing", a)


def test_average_and_prune(tmp_path) -> None:
    models = [model(i) for i in range(3)]
    paths = [
        save_checkpoint(tmp_path / f"step-{i:08d}", m, m.config, None, {"step": i})
        for i, m in enumerate(models)
    ]
    out = average_checkpoints(paths, tmp_path / "average")
    avg = model(9)
    load_weights(out, avg, avg.config)
    expected = sum(m.encoder_layers[0].ffn.fc1.weight for m in models) / 3
    torch.testing.assert_close(avg.encoder_layers[0].ffn.fc1.weight, expected)
    assert prune_checkpoints(tmp_path, keep_last=2) == paths[:1]
    assert step_checkpoints(tmp_path) == paths[1:]


def test_default_checkpoint_is_recorded_relative_to_the_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    (run.checkpoints / "average").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run.set_default_checkpoint(run.checkpoints / "average")
    # Relative, so that the run directory can be moved or copied.
    assert run.info()["default_checkpoint"] == "checkpoints/average"
    assert run.default_checkpoint() == run.path / "checkpoints" / "average"
    run.set_default_checkpoint(elsewhere)
    assert run.info()["default_checkpoint"] == str(elsewhere.resolve())
    assert run.default_checkpoint() == elsewhere.resolve()
