"""Facts about the machine a run trains on: idle CPU cores, bf16 support, the device's name, library versions."""

from __future__ import annotations

import os
import time


def auto_threads(default: int) -> int:
    """CPU threads for training when the config leaves it open: as many as there are idle cores (at most
    ``default``), measured over half a second. Threads on cores that other processes keep busy wait on each other at
    every operation: two threads on a shared 2-core machine can be several times slower than one."""
    try:
        import psutil

        cores, me = os.cpu_count() or 1, psutil.Process()
        psutil.cpu_percent(None), me.cpu_percent(None)
        time.sleep(0.5)
        busy = psutil.cpu_percent(None) / 100 * cores - me.cpu_percent(None) / 100  # other processes only
    except Exception:  # noqa: BLE001 - no measurement: keep PyTorch's choice
        return default
    return max(1, min(default, int(cores - busy + 0.5)))


def bf16_supported() -> bool:
    """Whether a CUDA GPU is here that computes in bfloat16 natively (Ampere or newer; a T4 does not: float16)."""
    from ..config import cuda_bf16

    return cuda_bf16()


def device_name() -> str:
    """The GPU's or CPU's name (what results record as the hardware)."""
    from ..results import hardware

    return hardware()


def versions(backend: str) -> dict[str, str]:
    """Installed versions of the libraries a run with ``backend`` uses (absent ones left out)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["torch", "transformers", "trl", "peft", "datasets"] + (["unsloth", "unsloth_zoo", "bitsandbytes"]
                                                                   if backend == "unsloth" else [])
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out
