"""What every export shares: one-line errors, and a folder that is whole or absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.run_helpers import copy_config

from aiayn.data import Vocabularies
from aiayn.export import ExportError, load_source, require, write_export
from aiayn.pipeline import train


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "copy"
    train(copy_config(max_steps=2), out)
    return out


def test_a_missing_extra_names_the_pip_extra() -> None:
    with pytest.raises(ExportError) as caught:
        require("no_such_engine_module", "ct2")
    message = str(caught.value)
    assert "no_such_engine_module is not installed" in message and "[ct2]" in message
    assert "\n" not in message


def test_an_export_is_whole_or_absent(run: Path, tmp_path: Path) -> None:
    source = load_source(run)
    out = tmp_path / "export"

    def fails(folder: Path) -> dict:
        (folder / "weights.bin").write_bytes(b"half")
        raise RuntimeError("engine failed")

    with pytest.raises(RuntimeError):
        write_export(out, source, "test", fails)
    assert not out.exists() and list(tmp_path.iterdir()) == []

    write_export(out, source, "test", lambda folder: {"note": 1})
    info = json.loads((out / "export.json").read_text())
    assert info["format"] == "test" and info["note"] == 1
    assert info["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert Vocabularies.load(out).src.encode("1 2 3") == source.vocabs.src.encode("1 2 3")

    with pytest.raises(ExportError, match="--force"):
        write_export(out, source, "test", lambda folder: {})
    write_export(out, source, "again", lambda folder: {}, force=True)
    assert json.loads((out / "export.json").read_text())["format"] == "again"
