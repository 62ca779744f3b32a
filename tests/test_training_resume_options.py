"""`aiayn train --resume` applies the options that may change and refuses the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aiayn.cli import main
from aiayn.runs import load_trainer_state, step_checkpoints
from aiayn.training import noam_lr

BASE = [
    "train", "--task", "copy", "--max-tokens", "256", "--precision", "fp32", "--valid-bleu", "0",
    "--no-progress", "--set", "data.task_train_size=300", "--set", "data.task_valid_size=20",
    "--set", "train.warmup=20",
]  # fmt: skip


def info(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def saved(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


@pytest.fixture
def one_epoch(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    assert main([*BASE, "--max-epochs", "1", "--out", str(run)]) == 0
    assert info(run)["trained_epochs"] == 1
    return run


def test_resume_with_more_epochs_trains_longer(one_epoch: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["train", "--out", str(one_epoch), "--resume", "--max-epochs", "2"]) == 0
    assert "train.max_epochs 1 -> 2" in capsys.readouterr().out
    assert info(one_epoch)["trained_epochs"] == 2
    assert saved(one_epoch)["train"]["max_epochs"] == 2
    assert info(one_epoch)["resumed_with_changes"][0]["changes"] == {"train.max_epochs": [1, 2]}


def test_max_minutes_ends_training_at_an_epoch_end_and_resume_honours_it(tmp_path: Path) -> None:
    """A time budget ends the run cleanly at the first epoch end past it (validated,
    averaged, not interrupted); a resume with the budget spent trains nothing more, and one
    with more time continues."""
    run = tmp_path / "run"
    limited = [*BASE, "--max-epochs", "2", "--set", "train.average_last=1"]
    assert main([*limited, "--max-minutes", "0.00001", "--out", str(run)]) == 0  # 0.6 ms
    assert info(run)["trained_epochs"] == 1
    assert (run / "checkpoints" / "average").is_dir()
    validations = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in validations if r["kind"] == "valid"] == [1]
    assert main(["train", "--out", str(run), "--resume"]) == 0  # the budget is spent
    assert info(run)["trained_epochs"] == 1
    assert main(["train", "--out", str(run), "--resume", "--max-minutes", "0"]) == 0
    assert info(run)["trained_epochs"] == 2


def test_a_cosine_run_ends_at_its_floor_after_the_planned_epochs(tmp_path: Path) -> None:
    """The cosine decay's length is max_epochs' updates (known once the sampler has cut the
    epoch): the last update of the last epoch runs at exactly lr_floor x the peak."""
    run = tmp_path / "run"
    options = ["--max-epochs", "2", "--set", "train.warmup=5"]
    options += ["--set", "train.lr_decay=cosine", "--set", "train.lr_floor=0.2"]
    assert main([*BASE, *options, "--out", str(run)]) == 0
    last = step_checkpoints(run / "checkpoints")[-1]
    state = load_trainer_state(last)
    per_epoch = state["step"] // 2
    assert state["step"] == 2 * per_epoch and per_epoch > 5  # past the warmup
    config = saved(run)
    peak = noam_lr(5, config["model"]["d_model"], 5, config["train"]["lr_factor"])
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.2 * peak)


def test_resume_with_the_same_command_line_changes_nothing(one_epoch: Path) -> None:
    before = saved(one_epoch)
    command = [*BASE, "--max-epochs", "1", "--out", str(one_epoch), "--resume"]
    assert main(command) == 0
    assert saved(one_epoch) == before and "resumed_with_changes" not in info(one_epoch)


def test_resume_with_another_beam_updates_the_decoding_settings(one_epoch: Path) -> None:
    assert main(["train", "--out", str(one_epoch), "--resume", "--beam", "3"]) == 0
    assert info(one_epoch)["decode"]["beam_size"] == 3
    assert saved(one_epoch)["decode"]["beam_size"] == 3


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (["--lr-factor", "2"], "train.lr_factor"),
        (["--set", "model.dropout=0.3"], "model.dropout"),
        (["--preset", "small"], "model.n_encoder_layers 2 -> 3"),
        (["--task", "reverse"], "data.task"),
    ],
)
def test_resume_refuses_what_would_change_the_run(
    one_epoch: Path, options: list[str], field: str, capsys
) -> None:
    before = (saved(one_epoch), sorted(p.name for p in (one_epoch / "checkpoints").iterdir()))
    capsys.readouterr()
    assert main(["train", "--out", str(one_epoch), "--resume", *options]) == 2
    error = capsys.readouterr().err
    assert field in error and error.count("\n") == 1, error
    after = (saved(one_epoch), sorted(p.name for p in (one_epoch / "checkpoints").iterdir()))
    assert after == before


def test_resume_with_another_config_file_is_refused(one_epoch: Path, tmp_path: Path, capsys):
    other = tmp_path / "other.yaml"
    model = {**saved(one_epoch)["model"], "d_ff": 96}
    other.write_text(yaml.safe_dump({**saved(one_epoch), "model": model}))
    capsys.readouterr()
    assert main(["train", "--out", str(one_epoch), "--resume", "--config", str(other)]) == 2
    assert "model.d_ff 256 -> 96" in capsys.readouterr().err
    # The same file with only a longer schedule is fine.
    same = {**saved(one_epoch), "train": {**saved(one_epoch)["train"], "max_epochs": 2}}
    other.write_text(yaml.safe_dump(same))
    assert main(["train", "--out", str(one_epoch), "--resume", "--config", str(other)]) == 0
    assert info(one_epoch)["trained_epochs"] == 2


def test_a_hand_edited_config_is_refused_on_resume(one_epoch: Path, capsys) -> None:
    edited = saved(one_epoch)
    edited["data"]["task"] = "reverse"
    (one_epoch / "config.yaml").write_text(yaml.safe_dump(edited))
    capsys.readouterr()
    assert main(["train", "--out", str(one_epoch), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "data.task 'copy' -> 'reverse'" in error and "edited" in error
    # An edit of a field that may change is fine.
    edited["data"]["task"] = "copy"
    edited["train"]["max_epochs"] = 2
    (one_epoch / "config.yaml").write_text(yaml.safe_dump(edited))
    assert main(["train", "--out", str(one_epoch), "--resume"]) == 0
    assert info(one_epoch)["trained_epochs"] == 2


def test_a_field_added_after_the_run_began_is_no_edit_at_its_default() -> None:
    from aiayn.config import RunConfig
    from aiayn.errors import ConfigError
    from aiayn.resuming import check_unedited, fingerprint

    config = RunConfig.quickstart()
    record = fingerprint(config)
    # The record of a run begun before data.subword existed (an older aiayn).
    older = {k: v for k, v in record["fields"].items() if k != "data.subword"}
    check_unedited(config, {"sha256": "older", "fields": older}, "config.yaml")
    # Away from its default, the same field is an edit, named.
    edited = config.replace("data", subword="bpe")
    with pytest.raises(ConfigError, match=r"data\.subword None -> 'bpe'"):
        check_unedited(edited, {"sha256": "older", "fields": older}, "config.yaml")
