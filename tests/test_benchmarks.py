"""The benchmark suite: it times the library's own paths, compares like with like, and reports
every ratio with its spread. Never a speed threshold: timings depend on the machine and its load.

Fast tests use tiny models; the `--quick` run of the whole suite is one slow subprocess test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from benchmarks import baselines, decoding, timing, training
from benchmarks.cases import Case, Row
from benchmarks.data import Workload
from benchmarks.decoding import Cell
from benchmarks.inference import BOS_ID, EOS_ID
from benchmarks.run import format_table
from benchmarks.timing import MatmulPeak, Samples, Spread, interleaved, paired_ratios
from torch import nn

from aiayn.data import Collator
from aiayn.model import ModelConfig
from aiayn.training import TrainStep

REPO = Path(__file__).resolve().parents[1]
QUICK_CASES = ["train_small_multi30k", "decoding", "memory"]
CPU = torch.device("cpu")


def tiny_workload(n: int = 2) -> Workload:
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        lengths = torch.randint(3, 9, (4, 2), generator=g).tolist()
        pairs = [
            (torch.randint(4, 30, (s,), generator=g).tolist(),
             torch.randint(4, 30, (t,), generator=g).tolist())
            for s, t in lengths
        ]  # fmt: skip
        batches.append(Collator()(pairs))
    return Workload("tiny", batches, 30)


# ------------------------------------------------------------------------------------ training


def test_the_training_candidates_run_the_trainers_own_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = TrainStep.__call__

    def counted(self, batches, stop_requested=lambda: False):  # type: ignore[no-untyped-def]
        calls.append(type(self.model).__name__)
        return original(self, batches, stop_requested)

    monkeypatch.setattr(TrainStep, "__call__", counted)
    work = tiny_workload(2)
    config = ModelConfig.tiny(30, 30)
    ours = training.ours_step(config, work.batches)
    same = training.baseline_same_step(config, work.batches)
    assert type(ours.step) is TrainStep and type(same.step) is TrainStep
    ours()
    same()
    assert calls == ["Transformer", "Transformer", "TorchTransformer", "TorchTransformer"]


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
def test_the_like_for_like_baseline_gets_our_settings() -> None:
    config = ModelConfig.tiny(30, 30, dropout=0.1)
    work = tiny_workload(1)
    ours = training.ours_step(config, work.batches, training.OursOptions(precision="bf16")).step
    same = training.baseline_same_step(config, work.batches, precision="bf16").step

    # Optimizer: the same class and every setting (fused / foreach flags included).
    assert type(same.optimizer) is type(ours.optimizer)
    assert same.optimizer.defaults == ours.optimizer.defaults
    assert ours.optimizer.defaults["fused"] is True
    for name in ("label_smoothing", "clip_norm", "precision", "device"):
        assert getattr(same, name) == getattr(ours, name), name
    assert vars(same.schedule).keys() == vars(ours.schedule).keys()
    assert (same.schedule.warmup, same.schedule.factor) == (ours.schedule.warmup, 1.0)

    # Attention dropout: nn.Transformer's own would be `dropout`; here it is ours.
    attention = [m for m in same.model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert len(attention) == config.n_encoder_layers + 2 * config.n_decoder_layers
    assert {m.dropout for m in attention} == {config.attention_dropout} == {0.0}
    users = baselines.TorchTransformer(config)
    assert {m.dropout for m in users.modules() if isinstance(m, nn.MultiheadAttention)} == {0.1}

    # The generator (and so the loss) at the same positions: the real targets only.
    batch = work.batches[0]
    same.model.eval()
    logits = same.model(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask, batch.tgt_mask)
    assert logits.shape == (batch.n_tgt_tokens, 30)
    full = same.model(batch.src, batch.tgt_in)
    torch.testing.assert_close(logits, full[batch.tgt_mask])


class _Entered(Exception):
    """Raised by the recording autocast once it has seen its device."""


def test_every_candidate_autocasts_on_the_runs_device(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool]] = []
    real = torch.autocast

    def recording(device_type: str, *args: object, **kwargs: object) -> torch.autocast:
        seen.append((device_type, bool(kwargs.get("enabled", True))))
        if device_type != "cpu":  # no such device here: stop once it has been asked for
            raise _Entered
        return real(device_type, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "autocast", recording)
    config = ModelConfig.tiny(30, 30)
    work = tiny_workload(1)
    users = training.baseline_as_users_write_it(config, work.batches, "bf16", CPU)
    same = training.baseline_same_step(config, work.batches, "bf16", CPU)
    users()
    same()
    training.ours_step(config, work.batches, training.OursOptions(precision="bf16"))()
    assert seen == [("cpu", True)] * 3

    # On a GPU run every candidate asks for the GPU's autocast, never a hard-coded CPU one.
    seen.clear()
    on_gpu = SimpleNamespace(src=SimpleNamespace(device=torch.device("cuda")))
    with pytest.raises(_Entered):
        baselines.train_step(users.model, users.optimizer, users.criterion, on_gpu, "bf16")
    same.step.device = torch.device("cuda")  # TrainStep.loss autocasts on the step's device
    with pytest.raises(_Entered):
        same.step.loss(work.batches[0])
    assert seen == [("cuda", True)] * 2


# -------------------------------------------------------------------------------- timing, peak


def test_spreads_and_paired_ratios() -> None:
    slow, fast = Samples([2.0, 3.0, 4.0]), Samples([1.0, 1.0, 2.0])
    ratios = paired_ratios(slow, fast)
    assert ratios.values == [2.0, 3.0, 2.0]
    assert (ratios.median, ratios.low, ratios.high) == (2.0, 2.0, 3.0)
    assert ratios.text() == "2.00x (2.00-3.00)"
    assert Spread([0.5, 0.25]).text("{:.0%}", "") == "38% (25%-50%)"
    order: list[str] = []
    timed = interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                        repeats=3, warmup=1)  # fmt: skip
    assert order == ["a", "b"] * 4 and all(len(s.seconds) == 3 for s in timed.values())


def test_the_matmul_peak_takes_the_fastest_size(monkeypatch: pytest.MonkeyPatch) -> None:
    peak = MatmulPeak.saturating(torch.float32, CPU, sizes=(32, 64, 128), tries=1)
    assert peak.size in (32, 64, 128) and peak.flops == 2.0 * peak.size**3
    assert peak.describe() == f"torch.mm {peak.size}^3, float32"
    # The size whose matmul reaches the most FLOP/s wins, not the largest one.
    clock = iter([0.0, 1.0, 0.0, 1.0, 0.0, 10_000.0])  # 64^3 fast; 32^3 and 128^3 slow
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert MatmulPeak.saturating(torch.float32, CPU, sizes=(32, 64, 128), tries=1).size == 64


# ------------------------------------------------------------------------------------ decoding


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory: pytest.TempPathFactory) -> decoding.Grid:
    config = ModelConfig.tiny(40, 40)
    cells = [Cell(3, 7, "greedy"), Cell(3, 7, "beam4"), Cell(1, 4, "greedy")]
    return decoding.grid(config, cells, tmp_path_factory.mktemp("grid"))


def test_every_decoding_candidate_writes_exactly_the_cells_length(
    tiny_grid: decoding.Grid,
) -> None:
    assert {name for _, name in tiny_grid.candidates} == {"ours", "recompute", "ct2"}
    assert (Cell(3, 7, "beam4"), "recompute") not in tiny_grid.candidates  # greedy only
    outputs = {key: fn() for key, fn in tiny_grid.candidates.items()}
    for (cell, name), out in outputs.items():
        if name == "ct2":
            ids = [[int(p[1:]) for p in r.hypotheses[0]] for r in out]
        elif cell.search == "beam4":
            ids = [hyps[0].tokens for hyps in out]
        else:
            ids = out
        assert len(ids) == cell.batch, (cell, name)
        assert all(len(row) == cell.length for row in ids), (cell, name)
        if name == "ours" and cell.search == "greedy":
            # ct2 runs the same exported weights: the same greedy tokens.
            ct2 = outputs[cell, "ct2"]
            assert ids == [[int(p[1:]) for p in r.hypotheses[0]] for r in ct2]


def test_recomputation_is_the_tutorials_greedy_decode() -> None:
    config = ModelConfig.tiny(40, 40)
    torch.manual_seed(0)
    theirs = baselines.TorchTransformer(config).eval()
    src = torch.randint(4, 40, (3, 6))
    ours_path = decoding.recompute(theirs, src, Cell(3, 5, "greedy"))()
    tutorial = baselines.greedy_recompute(theirs, src, bos_id=BOS_ID, eos_id=EOS_ID, steps=5)
    assert ours_path == tutorial.tolist()


def test_the_decoding_grid_gives_a_table_and_a_plot(tmp_path: Path) -> None:
    cells = [Cell(2, 5, "greedy"), Cell(2, 5, "beam4"), Cell(2, 9, "greedy")]
    timed = {}
    for i, cell in enumerate(cells):
        timed[cell, "ours"] = Samples([0.1 + i, 0.2 + i, 0.15 + i])
        timed[cell, "ct2"] = Samples([0.05, 0.1, 0.1])
        if cell.search == "greedy":
            timed[cell, "recompute"] = Samples([1.0, 1.0, 1.5])
    results = decoding.results(timed)
    by = {(r.cell, r.candidate): r for r in results}
    first = by[cells[0], "ours"]
    assert first.vs_recompute is not None and first.vs_recompute.values == [10.0, 5.0, 10.0]
    assert first.vs_ct2 is not None and first.vs_ct2.values == [0.5, 0.5, 0.1 / 0.15]
    beam = by[cells[1], "ours"]  # against recomputed greedy of the same batch and length
    assert beam.vs_recompute is not None
    assert beam.vs_recompute.values == pytest.approx([1 / 1.1, 1 / 1.2, 1.5 / 1.15])
    assert first.ms_per_sentence == pytest.approx(75.0)
    table = decoding.table(results)
    assert len(table.splitlines()) == 2 + len(results)
    assert "10.00x (5.00-10.00)" in table
    png = decoding.plot(results, tmp_path / "plots" / "grid.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_table_shows_every_ratio_with_its_range() -> None:
    row = Row("ours", Samples([1.0, 2.0, 3.0]), 100, Spread([1.1, 1.2, 1.4]), Spread([0.5] * 3))
    row.extra["mfu_padded"] = 0.6
    text = format_table([Case("train_small_multi30k", "d", [row])])
    line = text.splitlines()[-1]
    assert "2.000 (1.000-3.000)" in line and "1.20x (1.10-1.40)" in line
    assert "50.0% (50.0%-50.0%)" in line and "padded positions counted: 60.0%" in line


# ---------------------------------------------------------------------------------- the suite


@pytest.mark.slow  # runs the benchmark suite in a subprocess
def test_quick_run_reports_every_case_with_rounds_and_spreads(
    multi30k: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(out)]
    cmd += ["--data-dir", str(multi30k)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "headline ratios: median of 5 rounds (lowest-highest round)" in done.stdout
    assert "like for like (same TrainStep)" in done.stdout
    assert "as a user runs each" in done.stdout
    assert "vs recompute (min-max)" in done.stdout  # the decoding grid's table

    result = json.loads(out.read_text())
    assert result["quick"] is True and result["repeats"] == 5 and "--quick" in result["command"]
    machine = result["machine"]
    assert machine["torch"] and machine["cpu_model"] and machine["cpu_capability"]
    assert [case["name"] for case in result["cases"]] == QUICK_CASES
    png = out.with_name("bench-decoding.png")
    assert png.read_bytes()[:4] == b"\x89PNG"

    for case in result["cases"]:
        rows = {row["candidate"]: row for row in case["rows"]}
        for name, row in rows.items():
            where = f"{case['name']}/{name}"
            assert row["ratio_vs_baseline"] > 0, where
            if case["name"] == "memory":
                assert row["peak_mib"] > 0, where
                continue
            assert len(row["seconds"]) == 5 and min(row["seconds"]) > 0, where
            assert row["ratio_min"] <= row["ratio_vs_baseline"] <= row["ratio_max"], where
            assert len(row["ratio_rounds"]) == 5, where
            assert row["tokens"] > 0 and row["tokens_per_s"] > 0, where
            if case["name"].startswith("train"):
                assert 0 < row["mfu_min"] <= row["mfu"] <= row["mfu_max"], where
    train = result["cases"][0]
    assert {r["candidate"] for r in train["rows"]} == {
        "ours",
        "nn.Transformer",
        "nn as users write it",
    }
    assert train["matmul_peak"].startswith("torch.mm ") and train["matmul_peak_flops_median"] > 0
    assert train["flops_per_call_padded"] >= train["flops_per_call"] > 0
    for spread in train["headline_ratios"].values():  # like for like, as users write it
        assert spread["min"] <= spread["median"] <= spread["max"] and len(spread["rounds"]) == 5
    assert len(train["headline_ratios"]) == 2
    cells = result["cases"][1]["cells"]
    assert {(c["batch"], c["length"], c["search"]) for c in cells} == set(decoding.QUICK_CELLS)
    assert {c["candidate"] for c in cells} == {"ours", "recompute", "ct2"}


def test_decoding_levers_time_every_lever_beside_ct2_and_recomputation(tmp_path: Path) -> None:
    from benchmarks.decoding_levers import main as levers

    out = tmp_path / "levers.json"
    result = levers(["--quick", "--rounds", "1", "--threads", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    cells = {c["cell"]: {r["candidate"]: r for r in c["rows"]} for c in result["cells"]}
    assert set(cells) == {"B1 L10 greedy", "B4 L10 beam4"}
    levers_ = {"ours", "log_softmax", "no inference mode", "explicit <= 32 keys", "ct2"}
    assert set(cells["B1 L10 greedy"]) == levers_ | {"recompute"}
    assert set(cells["B4 L10 beam4"]) == levers_
    for rows in cells.values():
        assert all(row["ms"] > 0 and row.get("speed_vs_ct2", 1) > 0 for row in rows.values())


def test_ab_training_times_this_tree_against_a_git_revision(tmp_path: Path) -> None:
    """Both trees run, each importing its own aiayn (the tool refuses a child that did not)."""
    from benchmarks.ab_training import main as ab

    out = tmp_path / "ab.json"
    args = ["--base", "HEAD", "--rounds", "2", "--threads", "1", "--batches", "1"]
    result = ab([*args, "--pairs", "300", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    assert len(result["rounds"]["this"]) == len(result["rounds"]["base"]) == 2
    assert all(t > 0 for times in result["rounds"].values() for t in times)
    low, high = result["speedup_range"]
    assert 0 < low <= result["speedup_median"] <= high
