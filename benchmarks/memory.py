"""Peak memory of training steps, one model per fresh process.

`python -m benchmarks.memory ours|nn [--preset small] [--precision fp32] [--device cpu]` builds
the model and its optimizer (nn: nn.Transformer through our TrainStep, like for like), runs two
training steps at the thread's shape (batch 32, source 128, target 64; the second step has
Adam's state allocated) and prints one JSON line: the peak resident set size and the resident
size just before the first step.

The peak is read from `VmHWM` in /proc/self/status, which counts this process image only.
`ru_maxrss` (also reported) is the same figure in a clean process, but Linux carries it over
from the parent across fork + exec, so in a child of a large process (the suite itself) it
shows the parent's peak whenever that is higher.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch

from aiayn.model import ModelConfig
from benchmarks.data import VOCAB_SIZE, fixed_shape_workload
from benchmarks.training import OursOptions, baseline_same_step, ours_step

MODELS = ("ours", "nn")


def status_mib(field: str) -> float:
    """A memory field of /proc/self/status (Linux), e.g. VmRSS (now) or VmHWM (peak), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # the file says kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def ru_maxrss_mib() -> float:
    """getrusage's peak resident set size (KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    model: str, preset: str, precision: str, device: str = "cpu", steps: int = 2
) -> dict[str, float | str]:
    """Run `steps` training steps of one model in this process and report its peak memory.

    On the CPU the peak resident set size (MiB); on CUDA the peak of allocated device memory.
    """
    torch.manual_seed(0)
    workload = fixed_shape_workload(vocab_size=VOCAB_SIZE)
    config = ModelConfig.preset(preset, VOCAB_SIZE, VOCAB_SIZE)
    dev = torch.device(device)
    if model == "ours":
        run = ours_step(config, workload.batches, OursOptions(precision=precision), dev)
    else:
        run = baseline_same_step(config, workload.batches, precision, dev)  # like for like
    if dev.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    else:
        before = status_mib("VmRSS")
    for _ in range(steps):
        run()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
        return {
            "peak_mib": peak,
            "before_step_mib": before,
            "step_mib": peak - before,
            "measure": "torch.cuda.max_memory_allocated",
        }
    peak = status_mib("VmHWM")
    return {
        "peak_mib": peak,
        "before_step_mib": before,
        "step_mib": peak - before,
        "ru_maxrss_mib": ru_maxrss_mib(),
        "measure": "peak RSS (VmHWM)",
    }


def measure_in_subprocess(
    model: str, preset: str, precision: str, device: str = "cpu"
) -> dict[str, float | str]:
    """`measure` in a fresh Python process, so neither model's memory colours the other's."""
    cmd = [sys.executable, "-m", "benchmarks.memory", model, "--preset", preset]
    cmd += ["--precision", precision, "--device", device]
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model, args.preset, args.precision, args.device)))


if __name__ == "__main__":
    main()
