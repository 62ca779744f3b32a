"""The command line: clear one-line errors for bad input, and translate/evaluate/attention work."""

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from aiayn.cli import main
from aiayn.config import RunConfig
from aiayn.pipeline import train


@pytest.fixture(scope="module")
def task_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few updates on the copy task: enough to exercise every command, not to be good."""
    out = tmp_path_factory.mktemp("runs") / "copy"
    config = RunConfig().replace("data", task="copy", task_train_size=300, task_valid_size=20)
    config = config.replace("train", max_steps=3, progress=False, precision="fp32")
    train(config, out)
    return out


def run_cli(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiayn", *args], input=stdin, capture_output=True, timeout=300
    )


@pytest.mark.slow  # reverse_run trains a model
def test_translate_keeps_order_and_empty_lines(reverse_run: Path, tmp_path: Path) -> None:
    """Each output line is the reversal of its own input line; empty lines stay where they were."""
    lines = ["1 2 3 4 5 6", "", "7 8 9 0", "3 1 4 1 5", "", "", "2 7 1 8 2", "9 9 0 1"]
    src = tmp_path / "in.txt"
    src.write_text("".join(line + "\n" for line in lines))
    out = tmp_path / "out.txt"
    args = ["translate", "--run", str(reverse_run), "--input", str(src), "--output", str(out)]
    assert main(args) == 0
    expected = [" ".join(reversed(line.split())) for line in lines]
    assert out.read_text().split("\n") == [*expected, ""]  # one line per input, then the end


def test_translate_errors_are_one_line_without_traceback(task_run: Path, tmp_path: Path) -> None:
    missing = run_cli(["translate", "--run", str(tmp_path / "nope")])
    assert missing.returncode == 2 and b"does not exist" in missing.stderr
    assert b"Traceback" not in missing.stderr
    bad = run_cli(["translate", "--run", str(task_run)], stdin=b"1 2\n3 \xff 4\n")
    assert bad.returncode == 2 and b"<stdin>:2: invalid UTF-8" in bad.stderr
    assert b"Traceback" not in bad.stderr
    no_file = run_cli(["translate", "--run", str(task_run), "--input", str(tmp_path / "x.txt")])
    assert no_file.returncode == 2 and b"x.txt" in no_file.stderr
    assert b"Traceback" not in no_file.stderr


def test_stopping_comes_from_the_run_or_the_command_line(
    task_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiayn.decoding.translator as translator_module

    seen: list[str] = []
    search = translator_module.beam_search

    def recording(*args, **kwargs):
        seen.append(kwargs["stopping"])
        return search(*args, **kwargs)

    monkeypatch.setattr(translator_module, "beam_search", recording)
    src = tmp_path / "in.txt"
    src.write_text("1 2 3\n")
    args = ["translate", "--run", str(task_run), "--input", str(src), "--beam", "2"]
    args += ["--output", str(tmp_path / "out.txt")]
    assert main(args) == 0  # the run's decode.stopping, "exact" by default
    assert main([*args, "--stopping", "k-finished"]) == 0
    assert seen == ["exact", "k-finished"]
    bad = run_cli([*args, "--stopping", "early"])
    assert bad.returncode == 2 and b"invalid choice: 'early'" in bad.stderr


def test_workers_come_from_the_run_or_the_command_line(
    task_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiayn.decoding.translator import Translator

    seen: list[int | None] = []
    translate_full = Translator.translate_full

    def recording(self, texts, **kwargs):
        seen.append(kwargs["workers"])
        return translate_full(self, texts, **kwargs)

    monkeypatch.setattr(Translator, "translate_full", recording)
    src = tmp_path / "in.txt"
    src.write_text("1 2 3\n4 5\n")
    out = tmp_path / "out.txt"
    args = ["translate", "--run", str(task_run), "--input", str(src), "--output", str(out)]
    assert main(args) == 0
    assert main([*args, "--workers", "2"]) == 0
    assert seen == [None, 2]  # None: the run's decode.workers
    assert out.read_text().count("\n") == 2
    bad = run_cli([*args, "--workers", "0"])
    assert bad.returncode == 2 and b"--workers: must be > 0, got 0" in bad.stderr


def test_evaluate_errors(task_run: Path, tmp_path: Path) -> None:
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("1 2\n3 4\n")
    ref.write_text("1 2\n")
    unequal = run_cli(
        ["evaluate", "--run", str(task_run), "--src-file", str(src), "--ref-file", str(ref)]
    )
    assert unequal.returncode == 2 and b"has 2 lines but" in unequal.stderr
    assert b"Traceback" not in unequal.stderr
    missing = run_cli(["evaluate", "--run", str(tmp_path / "nope")])
    assert missing.returncode == 2 and b"does not exist" in missing.stderr
    ref.write_text("1 2\n3 4\n")
    ok = run_cli(
        ["evaluate", "--run", str(task_run), "--src-file", str(src), "--ref-file", str(ref)]
    )
    assert ok.returncode == 0, ok.stderr
    assert b"sacreBLEU" in ok.stdout and b"chrF" in ok.stdout
    assert (task_run / "translations" / "src.txt.hyp").read_text().count("\n") == 2


def test_attention_picture(task_run: Path, tmp_path: Path) -> None:
    png = tmp_path / "att.png"
    assert main(["attention", "--run", str(task_run), "--text", "1 2 3", "--output", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_refuses_mismatched_files_and_unknown_config_keys(tmp_path: Path) -> None:
    a, b = tmp_path / "a.de.gz", tmp_path / "b.en"
    with gzip.open(a, "wt") as f:
        f.write("eins\nzwei\ndrei\n")
    b.write_text("one\ntwo\n")
    done = run_cli(
        ["train", "--src-file", str(a), "--tgt-file", str(b), "--out", str(tmp_path / "r")]
    )
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    # The line counts stand next to the file names (temporary paths hold digits of their own).
    assert f"{a} has 3 lines, {b} has 2;" in done.stderr.decode()
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  max_step: 3\n")
    bad = run_cli(["train", "--config", str(config), "--out", str(tmp_path / "r2")])
    assert bad.returncode == 2 and b"max_step" in bad.stderr and b"Traceback" not in bad.stderr


def test_average_makes_the_default_checkpoint(task_run: Path) -> None:
    assert main(["average", "--run", str(task_run), "--last", "1"]) == 0
    assert (task_run / "checkpoints" / "average" / "model.safetensors").exists()
    assert main(["average", "--run", str(task_run), "--last", "9"]) == 2
