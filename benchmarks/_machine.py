"""What else is busy on the machine while a benchmark runs (shared by the benchmark scripts)."""

from __future__ import annotations

import os
import time


def busy_processes(threshold: float = 10.0) -> list[str]:
    """Other processes using more than ``threshold`` % of a core over one second (needs psutil)."""
    try:
        import psutil
    except ImportError:
        return ["(psutil not installed: not checked)"]

    procs = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.pid != os.getpid()]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(1.0)
    out = []
    for p in procs:
        try:
            share = p.cpu_percent(None)
        except psutil.Error:
            continue
        if share > threshold:
            cmd = " ".join(p.info.get("cmdline") or [p.info.get("name") or "?"])[:48]
            out.append(f"{cmd} ({share:.0f}%)")
    return out
