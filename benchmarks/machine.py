"""The machine a figure was measured on, and how busy it was (Linux /proc)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import torch


def busy_share(seconds: float = 1.0) -> float | None:
    """Share of the CPU that other processes used over the next `seconds` (Linux)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(total1 - total0, 1)


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (Linux), to spot other work competing for the CPU."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux), or nothing."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def machine() -> dict[str, Any]:
    cpu = cpuinfo()
    flags = set(cpu.get("flags", "").split())
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu.get("model name") or platform.processor(),
        "cpu_family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        "cpu_flags_of_note": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}),
        "logical_cpus": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "flush_denormal": True,
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
    return info
