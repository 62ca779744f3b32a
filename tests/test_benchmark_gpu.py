"""The prepared GPU run (benchmarks/gpu.py): it runs end to end, reads the SDPA kernel from the
profiler and reports host syncs; on a CPU with `--smoke`, so that a lent GPU's minutes are not
spent finding its bugs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from benchmarks import gpu


def test_the_smoke_run_writes_every_part(tmp_path: Path) -> None:
    result = gpu.main(["--device", "cpu", "--smoke", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "gpu.json").read_text())
    assert written["parts"].keys() == result["parts"].keys() == {"training", "decoding"}
    assert written["machine"]["device"] == "cpu"
    for precision in ("bf16", "fp32"):
        part = written["parts"]["training"][precision]
        (case,) = part["cases"]
        assert {r["candidate"] for r in case["rows"]} == {
            "ours",
            "nn.Transformer",
            "nn as users write it",
        }
        assert any("like for like" in h for h in part["headlines"])
        # Our training attention is SDPA: on a CPU torch runs its flash kernel, forward and
        # backward; the explicit kernel or a math fallback would show here.
        assert part["checks"]["sdpa_kernels"] == ["flash"]
        assert any(op.endswith("_backward") for op in part["checks"]["sdpa_ops"])
        assert part["checks"]["host_syncs"] is None  # only measurable on CUDA
    cells = written["parts"]["decoding"]["cells"]
    assert {(c["batch"], c["search"], c["candidate"]) for c in cells} == {
        (b, search, cand)
        for b in gpu.SMOKE_BATCHES
        for search, cand in (("greedy", "ours"), ("greedy", "recompute"), ("beam4", "ours"))
    }
    assert all(c["length"] == gpu.SMOKE_LENGTH for c in cells)
    summary = (tmp_path / "gpu.md").read_text()
    assert "SDPA kernels in one update of ours: flash" in summary
    assert "## Decoding" in summary


@pytest.mark.parametrize(
    ("ops", "families"),
    [
        (
            {"aten::_scaled_dot_product_flash_attention": 4, "aten::_flash_attention_backward": 4},
            ["flash"],
        ),
        (
            {
                "aten::_scaled_dot_product_efficient_attention": 4,
                "aten::_efficient_attention_backward": 4,
            },
            ["memory-efficient"],
        ),
        ({"aten::_scaled_dot_product_cudnn_attention": 2}, ["cudnn"]),
        ({"aten::_scaled_dot_product_attention_math": 2, "aten::bmm": 4}, ["math"]),
        ({"aten::bmm": 4}, []),
    ],
)
def test_profiled_op_names_name_the_kernel(ops: dict[str, int], families: list[str]) -> None:
    assert gpu.kernel_families(ops) == families


def test_host_syncs_are_reported_with_their_line(monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[object] = []
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    calls = []

    def update() -> None:
        calls.append(1)
        if len(calls) == 2:  # the measured call, after the warm one
            warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)

    syncs = gpu.host_syncs(update, torch.device("cuda"))
    assert len(calls) == 2
    assert modes == ["warn", "default"]  # switched on for the measured call only, then off
    assert syncs is not None and len(syncs) == 1
    assert syncs[0].startswith(f"{Path(__file__)}:")
    assert syncs[0].endswith("called a synchronizing CUDA operation")
    assert gpu.host_syncs(update, torch.device("cpu")) is None


def test_without_cuda_the_run_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        gpu.main(["--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "--device cuda" in err and "sees no CUDA device" in err and "--smoke" in err
    assert not (tmp_path / "gpu.json").exists()
