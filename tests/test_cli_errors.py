"""The command line prints the project's errors as one line and lets bugs keep their traceback;
translate --interactive survives bad input, demo and run.json refuse bad values in one line."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import pytest

import aiayn.cli.demo
from aiayn.cli import main
from aiayn.config import RunConfig
from aiayn.data import DataError
from aiayn.decoding.translator import Translator
from aiayn.pipeline import train


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two updates on the copy task: a run every command can load, not a good one."""
    out = tmp_path_factory.mktemp("runs") / "copy"
    config = RunConfig().replace("data", task="copy", task_train_size=200, task_valid_size=10)
    train(config.replace("train", max_steps=2, progress=False, precision="fp32"), out)
    return out


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aiayn ") and "Traceback" not in err
    return err


def edit_run_json(copy_run: Path, tmp_path: Path, section: str, values: dict) -> Path:
    """A copy of the run whose run.json has `values` merged into `section`."""
    run = tmp_path / "run"
    shutil.copytree(copy_run, run)
    info = json.loads((run / "run.json").read_text())
    info[section] = {**info[section], **values}
    (run / "run.json").write_text(json.dumps(info))
    return run


@pytest.mark.parametrize(
    ("section", "values", "named"),
    [
        ("decode", {"beam": 4}, "beam"),
        ("decode", {"beam_size": "four"}, "decode.beam_size must be an int, got 'four'"),
        ("decode", {"beam_size": 0}, "decode.beam_size"),
        ("model_config", {"d_model": "64"}, "ModelConfig.d_model must be an int, got '64'"),
        ("model_config", {"d_modle": 64}, "d_modle"),
    ],
)
def test_a_bad_key_in_run_json_is_one_line_naming_the_file_and_key(
    copy_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    section: str,
    values: dict,
    named: str,
) -> None:
    run = edit_run_json(copy_run, tmp_path, section, values)
    assert main(["translate", "--run", str(run), "--device", "cpu"]) == 2
    err = one_line_error(capsys)
    assert f"{run / 'run.json'}: " in err and named in err


def set_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_interactive_reports_invalid_utf8_and_carries_on(
    copy_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_stdin(monkeypatch, b"1 2 3\n4 \xff 5\n\n6 7\r\n")
    assert main(["translate", "--run", str(copy_run), "--device", "cpu", "--interactive"]) == 0
    out, err = capsys.readouterr()
    expected = Translator.from_run(copy_run).translate(["1 2 3", "", "6 7"])
    assert out == "".join(t + "\n" for t in expected)
    assert err.count("<stdin>:2: invalid UTF-8") == 1 and "Traceback" not in err


def test_interactive_refuses_input_and_output(
    copy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("1 2\n")
    for option, value in (("--input", str(source)), ("--output", str(tmp_path / "out.txt"))):
        args = ["translate", "--run", str(copy_run), "--interactive", option, value]
        assert main(args) == 2
        err = one_line_error(capsys)
        assert "--interactive" in err and option in err
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--vocab", "2"], "--vocab"),
        (["--vocab", "4"], "--vocab"),
        (["--batch", "0"], "--batch"),
        (["--src-len", "0"], "--src-len"),
        (["--tgt-len", "-1"], "--tgt-len"),
    ],
)
def test_demo_refuses_impossible_shapes_in_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    assert main(["demo", "--preset", "tiny", *args]) == 2
    assert named in one_line_error(capsys)


def test_demo_runs_with_the_smallest_vocabulary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--preset", "tiny", "--vocab", "5", "--batch", "2"]) == 0
    assert "logits (2, 64, 5)" in capsys.readouterr().out


def test_average_and_attention_refuse_bad_options_in_one_line(
    copy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["average", "--run", str(copy_run), "--last", "0"]) == 2
    assert "--last" in one_line_error(capsys)
    png = str(tmp_path / "a.png")
    args = ["attention", "--run", str(copy_run), "--device", "cpu", "--text", " ", "--output", png]
    assert main(args) == 2
    assert "--text" in one_line_error(capsys)


def replace_demo(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def handler(args: object) -> int:
        raise error

    monkeypatch.setattr(aiayn.cli.demo, "run", handler)


@pytest.mark.parametrize(
    "error",
    [ValueError("a bug"), RuntimeError("a bug"), KeyError("a bug"), OSError(28, "a bug")],
)
def test_other_exceptions_are_bugs_and_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    replace_demo(monkeypatch, error)
    with pytest.raises(type(error), match="a bug"):
        main(["demo"])


@pytest.mark.parametrize(
    "error",
    [
        DataError("data.txt:3: a user's mistake"),
        FileNotFoundError(2, "No such file or directory", "data.txt"),
        PermissionError(13, "Permission denied", "data.txt"),
    ],
)
def test_project_errors_and_user_paths_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    replace_demo(monkeypatch, error)
    assert main(["demo"]) == 2
    err = one_line_error(capsys)
    assert err.startswith("aiayn demo: error: ") and "data.txt" in err


def test_ctrl_c_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_demo(monkeypatch, KeyboardInterrupt())
    assert main(["demo"]) == 130
    assert one_line_error(capsys) == "aiayn demo: interrupted\n"


def test_a_run_json_that_is_no_object_is_one_line(
    copy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(copy_run, run)
    for text in ("[1, 2]", '{"model_config": 5}'):
        (run / "run.json").write_text(text)
        assert main(["translate", "--run", str(run), "--device", "cpu"]) == 2
        assert "run.json" in one_line_error(capsys)


def test_output_to_a_folder_names_the_folder(
    copy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.txt").write_text("1 2\n")
    folder = tmp_path / "out"
    folder.mkdir()
    command = ["translate", "--run", str(copy_run), "--input", str(tmp_path / "in.txt")]
    assert main([*command, "--output", str(folder)]) == 2
    err = one_line_error(capsys)
    assert str(folder) in err and ".tmp" not in err


def test_learned_positions_shorter_than_the_data_are_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = [
        "train", "--task", "copy", "--out", str(tmp_path / "r"), "--no-progress",
        "--set", "model.positional=learned", "--set", "model.max_positions=8",
    ]  # fmt: skip
    assert main(command) == 2
    err = one_line_error(capsys)
    assert "model.max_positions is 8" in err and "13 tokens" in err
    assert not (tmp_path / "r" / "checkpoints").exists()
