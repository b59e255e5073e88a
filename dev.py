#!/usr/bin/env python3
"""Set up and run Persona Lab on a machine that has only python3 and the package registries.

    python3 dev.py course   # set up .venv, then run every lesson headless into build/
    python3 dev.py test     # set up .venv (with dev tools), then run the whole test suite

Both are idempotent: the install is skipped while pyproject.toml and constraints.txt are unchanged.
torch==2.13.0 is installed first so that a CPU machine never pulls the CUDA build.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("PERSONALAB_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
TORCH = "torch==2.13.0"


def sh(*cmd: str | Path, **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def setup(extras: str) -> None:
    stamp = VENV / f".personalab-{extras}.stamp"
    digest = hashlib.sha256(
        b"".join((ROOT / f).read_bytes() for f in ("pyproject.toml", "constraints.txt"))
    ).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [PY, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    sh(*pip, TORCH)  # first, so nothing later pulls a CUDA build
    sh(*pip, "-c", ROOT / "constraints.txt", "-e", f"{ROOT}[{extras}]")
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("course", "test"):
        print(__doc__)
        return 2
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if argv[0] == "course":
        setup("dev")
        return subprocess.run([BIN / "personalab", "run-course", *argv[1:]], env=env, cwd=ROOT).returncode
    setup("dev")
    sh(BIN / "ruff", "check", "personalab", "tests", "benchmarks", "dev.py", cwd=ROOT)
    sh(BIN / "personalab", "notebooks", "check", cwd=ROOT, env=env)
    cmd = [
        PY,
        "-m",
        "pytest",
        "tests",
        "lessons",
        "solutions",
        "--nbval-lax",
        "--nbval-sanitize-with",
        "tests/sanitize.cfg",
        "--nbval-current-env",
        "--nbval-cell-timeout=900",
        "-p",
        "no:cacheprovider",
        *argv[1:],
    ]
    return subprocess.run(cmd, env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
