"""Numeric precision: bf16 autocast where the hardware computes it natively, float32 elsewhere."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """True if the CPU computes bf16 matmuls in hardware (AVX-512 BF16 or AMX)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return False
    flags = cpuinfo.read_text(errors="replace")
    return "avx512_bf16" in flags or "amx_bf16" in flags


# Below this width bf16 autocast does not pay on a CPU, even with native bf16: the casts cost
# more than the small matmuls gain (`python -m benchmarks.recipe`; figures in docs/multi30k.md).
CPU_BF16_MIN_D_MODEL = 256


def resolve_precision(precision: str, device: torch.device, d_model: int | None = None) -> str:
    """Turn "auto" into "bf16" or "fp32" for this device (and model width, if given).

    "auto" means bf16 on CUDA, and on CPUs with native bf16 for models at least
    `CPU_BF16_MIN_D_MODEL` wide; float32 elsewhere: a CPU without bf16 instructions emulates
    bf16 matmuls, many times slower than float32 ones (figures in docs/benchmarks.md).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    if device.type != "cpu" or not cpu_has_native_bf16():
        return "fp32"
    return "fp32" if d_model is not None and d_model < CPU_BF16_MIN_D_MODEL else "bf16"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision ("bf16" or "fp32")."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_description(device: torch.device) -> str:
    """A short description of the hardware, for logs and benchmark records."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return (
        f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()}, "
        f"native bf16: {'yes' if cpu_has_native_bf16() else 'no'}, "
        f"{torch.get_num_threads()} threads)"
    )
