"""Shared by the benchmark scripts: what else is busy on the machine, and one worker process per measured run."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

RESULT_PREFIX = "RESULT "


def print_result(result: dict) -> None:
    """A worker's last word: its result as one ``RESULT {json}`` line on stdout."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_worker(cmd: list[str], backend: str) -> dict:
    """Run one worker in its own process and return its result (or ``{"backend", "error"}`` with its output shown)."""
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if r.returncode or not lines:
        print(r.stdout[-4000:])
        return {"backend": backend, "error": f"exit {r.returncode}"}
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def append_table_rows(path: Path, section: str, header: str, rows: list[str], *, new_section_first: bool) -> None:
    """Add ``rows`` at the end of the table under ``section`` in RESULTS.md-style ``path``. A missing section (with
    its table ``header``) goes above the other sections (``new_section_first``) or at the end."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if section not in text:
        if new_section_first and "\n## " in text:
            first = text.index("\n## ") + 1
            text = text[:first] + f"{section}\n\n{header}\n" + text[first:]
        else:
            text = text.rstrip("\n") + f"\n\n{section}\n\n{header}"
    lines = text.splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith(section))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    last = max(i for i in range(start, end) if lines[i].startswith("|"))
    lines[last + 1:last + 1] = rows
    path.write_text("".join(lines), encoding="utf-8")


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
