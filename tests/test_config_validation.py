"""Typed config validation: a wrong type or range is a ConfigError naming section.key, the value
and the expected type, raised before any data or vocabulary is built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import aiayn.pipeline
import aiayn.run_data
from aiayn.cli import main
from aiayn.config import RunConfig
from aiayn.decoding.config import DecodeConfig
from aiayn.errors import ConfigError
from aiayn.model import ModelConfig
from aiayn.training.config import TrainConfig

# (YAML text, the key, the value as the message shows it, the expected type it names)
WRONG_TYPES = [
    ("model: {dropout: high}", "model.dropout", "'high'", "float"),
    ('model: {d_model: "128"}', "model.d_model", "'128'", "int"),
    ("model: {norm_first: 1}", "model.norm_first", "1", "bool"),
    ("model: {dropout: null}", "model.dropout", "None", "float"),
    ("model: {preset: 5}", "model.preset", "5", "str"),
    ("model: [1, 2]", "model", "[1, 2]", "mapping"),
    ("data: 5", "data", "5", "mapping"),
    ("data: {vocab_size: '8000'}", "data.vocab_size", "'8000'", "int or None"),
    ("data: {corpus: null}", "data.corpus", "None", "str"),
    ("data: {joint_vocab: yes please}", "data.joint_vocab", "'yes please'", "bool"),
    ("train: {max_steps: ten}", "train.max_steps", "'ten'", "int"),
    ("train: {max_steps: 2.5}", "train.max_steps", "2.5", "int"),
    ("train: {max_epochs: true}", "train.max_epochs", "True", "int"),
    ("train: {lr_factor: fast}", "train.lr_factor", "'fast'", "float"),
    ("train: {progress: 0}", "train.progress", "0", "bool"),
    ("train: {max_sentences: 1.5}", "train.max_sentences", "1.5", "int or None"),
    ("decode: {beam_size: 4.0}", "decode.beam_size", "4.0", "int"),
    ("decode: {alpha: '0.6'}", "decode.alpha", "'0.6'", "float"),
]

# (YAML text, the key the range error names)
OUT_OF_RANGE = [
    ("model: {dropout: 1.5}", "model.dropout"),
    ("model: {d_model: 100, n_heads: 3}", "model.d_model"),
    ("model: {preset: huge}", "model.preset"),
    ("data: {max_len: 0}", "data.max_len"),
    ("data: {corpus: books}", "data.corpus"),
    ("train: {max_tokens: 0}", "train.max_tokens"),
    ("train: {precision: fp8}", "train.precision"),
    ("train: {device: gpu}", "train.device"),
    ("decode: {beam_size: 0}", "decode.beam_size"),
    ("decode: {max_tokens: 0}", "decode.max_tokens"),
    ("decode: {stopping: early}", "decode.stopping"),
    ("decode: {workers: 0}", "decode.workers"),
]


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if training gets as far as reading text or building a vocabulary."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("data or vocabulary built before the config was validated")

    monkeypatch.setattr(aiayn.run_data, "load_corpus", forbidden)
    monkeypatch.setattr(aiayn.run_data, "build_vocabularies", forbidden)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize(("text", "key", "value", "expected"), WRONG_TYPES)
def test_a_wrong_type_names_the_key_value_and_type(
    tmp_path: Path, text: str, key: str, value: str, expected: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        RunConfig.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key} must be ")
    assert f"got {value} (" in message and expected in message.split(", got")[0]
    assert "\n" not in message


@pytest.mark.parametrize(("text", "key"), OUT_OF_RANGE)
def test_a_value_out_of_range_is_a_config_error_naming_the_key(
    tmp_path: Path, text: str, key: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}: {key}\b"):
        RunConfig.load(path)


def test_ints_are_accepted_for_floats_and_stored_as_floats(tmp_path: Path) -> None:
    path = write_config(tmp_path, "model: {dropout: 0}\ntrain: {lr_factor: 1, clip_norm: 2}")
    config = RunConfig.load(path)
    assert config.train.lr_factor == 1.0 and type(config.train.lr_factor) is float
    assert type(config.train.clip_norm) is float
    assert config.model["dropout"] == 0.0 and type(config.model["dropout"]) is float
    assert type(config.model_config(10, 10).dropout) is float
    assert "lr_factor: 1.0" in config.to_yaml()


def test_none_is_accepted_only_where_the_field_is_optional(tmp_path: Path) -> None:
    config = RunConfig.load(write_config(tmp_path, "data: {vocab_size: null, src_file: null}"))
    assert config.data.vocab_size is None
    with pytest.raises(ConfigError, match=r"train\.seed must be an int, got None"):
        RunConfig.from_dict({"train": {"seed": None}})


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"train\.max_steps must be an int, got 2\.5"):
        TrainConfig(max_steps=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"decode\.beam_size must be an int, got True"):
        DecodeConfig(beam_size=True)
    assert type(DecodeConfig(alpha=1).alpha) is float
    # The model layer imports only torch: its own check raises a ValueError naming the field.
    with pytest.raises(ValueError, match=r"ModelConfig\.dropout must be a float, got 'high'"):
        ModelConfig.tiny(10, 10, dropout="high")
    with pytest.raises(ValueError, match=r"ModelConfig\.d_model must be an int, got '128'"):
        ModelConfig.from_dict({**ModelConfig.tiny(10, 10).to_dict(), "d_model": "128"})
    with pytest.raises(ValueError, match=r"ModelConfig\.tgt_vocab_size is missing"):
        ModelConfig.from_dict({"src_vocab_size": 10})
    assert type(ModelConfig.tiny(10, 10, dropout=0).dropout) is float


def test_unreadable_config_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml not found"):
        RunConfig.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.load(write_config(tmp_path, "model: {dropout: [}"))
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"data: {src_lang: \xe9}\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml: not UTF-8"):
        RunConfig.load(bad)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in train: max_step"):
        RunConfig.load(write_config(tmp_path, "train: {max_step: 3}"))


def test_shared_embeddings_need_a_joint_vocabulary_before_any_data() -> None:
    with pytest.raises(ConfigError, match=r"model\.share_embeddings.*data\.joint_vocab"):
        RunConfig.from_dict({"model": {"preset": "multi30k"}, "data": {"joint_vocab": False}})


@pytest.mark.parametrize(("text", "key", "value", "expected"), WRONG_TYPES)
def test_train_refuses_a_bad_config_file_before_any_data(
    tmp_path: Path,
    no_data: None,
    capsys: pytest.CaptureFixture[str],
    text: str,
    key: str,
    value: str,
    expected: str,
) -> None:
    path = write_config(tmp_path, text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{key} must be" in err and value in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("setting", "key", "value"),
    [
        ("model.dropout=high", "model.dropout", "'high'"),
        ('model.d_model="128"', "model.d_model", "'128'"),
        ("train.max_steps=ten", "train.max_steps", "'ten'"),
        ("train.max_steps=2.5", "train.max_steps", "2.5"),
        ("train.lr_factor=fast", "train.lr_factor", "'fast'"),
        ("train.compile=1", "train.compile", "1"),
        ("data.vocab_size=null", "data.vocab_size", None),  # accepted: optional
    ],
)
def test_train_refuses_a_bad_set_before_any_data(
    tmp_path: Path,
    no_data: None,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    key: str,
    value: str | None,
) -> None:
    args = ["train", "--set", setting, "--src-file", str(tmp_path / "missing.de")]
    args += ["--tgt-file", str(tmp_path / "missing.en"), "--out", str(tmp_path / "run")]
    if value is None:
        with pytest.raises(AssertionError, match="data or vocabulary built"):
            main(args)
        return
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{key} must be" in err and f"got {value}" in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("dropout=0.3", "expected SECTION.KEY=VALUE"),
        ("model.dropout", "expected SECTION.KEY=VALUE"),
        ("optim.lr=3", "unknown section 'optim'"),
        ("model.dropout=[", "not valid YAML"),
    ],
)
def test_malformed_set_is_a_usage_error(
    tmp_path: Path, no_data: None, capsys: pytest.CaptureFixture[str], setting: str, message: str
) -> None:
    assert main(["train", "--set", setting, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--set" in err and message in err


def test_set_through_the_command_is_one_line_without_traceback(tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    done = subprocess.run(
        [sys.executable, "-m", "aiayn", "train", "--set", "model.dropout=high", "--out", out],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "model.dropout must be a float, got 'high' (str)" in done.stderr
    assert not (tmp_path / "run").exists()
