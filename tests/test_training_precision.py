"""`--precision auto`: bf16 only where it pays (CUDA; native-bf16 CPUs, models >= 256 wide)."""

import pytest
import torch

from aiayn.training import precision
from aiayn.training.precision import CPU_BF16_MIN_D_MODEL, resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("native", "device", "d_model", "expected"),
    [
        (True, CPU, None, "bf16"),
        (True, CPU, CPU_BF16_MIN_D_MODEL, "bf16"),
        (True, CPU, 128, "fp32"),  # small matmuls: the casts cost more than bf16 gains
        (False, CPU, 512, "fp32"),  # AVX2-only: bf16 emulated, far slower
        (False, CUDA, 128, "bf16"),
    ],
)
def test_auto(
    monkeypatch: pytest.MonkeyPatch, native: bool, device: torch.device, d_model, expected: str
) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", device, d_model) == expected


def test_explicit_choices_are_kept_and_unknown_ones_refused() -> None:
    assert resolve_precision("fp32", CUDA, 1024) == "fp32"
    assert resolve_precision("bf16", CPU, 64) == "bf16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", CPU)
