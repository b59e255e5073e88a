#!/usr/bin/env python3
"""Set up and run Persona Lab on a machine that has only python3 (3.11-3.13) and the package registries.

    python3 dev.py course   # set up .venv, then run every lesson headless into build/
    python3 dev.py test     # set up .venv, then run the whole test suite (what CI runs)
    python3 dev.py colab-sim  # simulate Colab's GPU runtime: setup cell, lessons 00-06, the express notebook (CI)
    python3 dev.py lock     # maintainers: re-resolve constraints.txt from pyproject.toml (needs the network)

The set-up never runs a dependency resolver: constraints.txt is a complete lock (every package and
version, with environment markers for Python 3.11-3.13), installed with ``--no-deps``: by uv (pinned in the
lock, installed first with pip), or by pip where uv fails.
torch comes first and separately: from PyTorch's CPU index when it answers (a ~200 MB CPU build), else
from the default index (PyPI's Linux build bundles CUDA: several GB), plus the CUDA packages the lock
pins for it. The install is skipped while pyproject.toml and constraints.txt are unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("PERSONALAB_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
LOCK = ROOT / "constraints.txt"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Lines of the lock that belong to torch's own install step (the CUDA parts only for a CUDA build).
TORCH_PART = re.compile(r"^(torch|triton|nvidia-[\w-]+|cuda-[\w-]+)==", re.IGNORECASE)
SUPPORTED = ((3, 11), (3, 13))


def sh(*cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], check=kw.pop("check", True), **kw)


def lock_lines() -> list[str]:
    """The lock's requirement lines (comments and blank lines dropped)."""
    out = []
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def _pip(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    return sh(PY, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", *args, check=check)


def install_torch(torch_line: str, cuda_lines: list[str]) -> None:
    """torch from PyTorch's CPU index; when that index can't be reached, the default index (and its CUDA parts)."""
    version = torch_line.split("==", 1)[1].split(";")[0].strip()
    quick = ["--timeout", "10", "--retries", "0"]
    tried = _pip("--no-deps", *quick, "--index-url", TORCH_CPU_INDEX, f"torch=={version}+cpu", check=False)
    if tried.returncode != 0:
        print(f"PyTorch's CPU index ({TORCH_CPU_INDEX}) did not answer; using the default index.", flush=True)
        _pip("--no-deps", f"torch=={version}")
    build = subprocess.run(
        [str(PY), "-c", "import importlib.metadata as m; print(m.version('torch'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if "+cpu" not in build and sys.platform.startswith("linux"):
        print(f"torch {build} is a CUDA build: installing the CUDA packages the lock pins for it (several GB).")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
            fh.write("\n".join(cuda_lines) + "\n")
        _pip("--no-deps", "-r", fh.name)
        os.unlink(fh.name)


def pip_find_links() -> list[str]:
    """The local wheel folders pip is configured with (``PIP_FIND_LINKS`` or pip's config), for uv to use too."""
    found = os.environ.get("PIP_FIND_LINKS", "").split()
    config = subprocess.run([str(PY), "-m", "pip", "config", "get", "global.find-links"], capture_output=True,
                            text=True, check=False)
    found += config.stdout.split() if config.returncode == 0 else []
    folders = [f.removeprefix("file://") for f in found]
    return list(dict.fromkeys(f for f in folders if Path(f).is_dir()))


def install_with_uv(requirements: str, lines: list[str]) -> bool:
    """Install the lock's lines with uv (the lock pins it): the same exact versions, --no-deps, several times
    faster than pip. False when uv is not in the lock or fails: the caller installs with pip instead."""
    uv_line = next((line for line in lines if line.lower().startswith("uv==")), None)
    if uv_line is None or _pip("--no-deps", uv_line.split(";")[0].strip(), check=False).returncode != 0:
        return False
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1")
    links = pip_find_links()
    if links:
        env["UV_FIND_LINKS"] = ",".join(links)
    done = sh(BIN / "uv", "pip", "install", "--python", PY, "--no-deps", "--compile-bytecode", "-q", "-r",
              requirements, env=env, check=False)
    if done.returncode != 0:
        print("uv could not install the lock; installing it with pip instead", flush=True)
    return done.returncode == 0


def setup() -> None:
    digest = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in ("pyproject.toml", "constraints.txt")))
    stamp = VENV / ".personalab.stamp"
    if stamp.exists() and stamp.read_text() == digest.hexdigest() and PY.exists():
        return
    if not SUPPORTED[0] <= sys.version_info[:2] <= SUPPORTED[1]:
        lo, hi = (".".join(map(str, v)) for v in SUPPORTED)
        sys.exit(
            f"dev.py: Python {sys.version.split()[0]} is not supported; Persona Lab needs Python {lo} to {hi} "
            f"(trl 1.15, which Unsloth pins, needs 3.11+). Run it with another interpreter, e.g. `python3.12 dev.py`."
        )
    t0 = time.perf_counter()
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    lines = lock_lines()
    torch_part = [line for line in lines if TORCH_PART.match(line)]
    rest = [line for line in lines if not TORCH_PART.match(line)]
    torch_line = next(line for line in torch_part if line.lower().startswith("torch=="))
    install_torch(torch_line, [line for line in torch_part if line is not torch_line])
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(rest) + "\n")
    try:
        if not install_with_uv(fh.name, rest):
            _pip("--no-deps", "-r", fh.name)
    finally:
        os.unlink(fh.name)
    _pip("--no-deps", "-e", ROOT)
    stamp.write_text(digest.hexdigest())
    print(f"set-up done in {time.perf_counter() - t0:.0f} s", flush=True)


def lock() -> int:
    """Re-resolve constraints.txt (universal, Python 3.11+) with uv; the current pins are kept where they fit."""
    header = [line for line in LOCK.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    no_deps = [line for line in LOCK.read_text(encoding="utf-8").splitlines() if "# no-deps" in line]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lock.txt"
        out.write_text("\n".join(line for line in LOCK.read_text(encoding="utf-8").splitlines()
                                 if line.strip() and not line.startswith("#") and "# no-deps" not in line) + "\n")
        env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
        sh(BIN / "uv", "pip", "compile", ROOT / "pyproject.toml", "--extra", "dev", "--universal",
           "--python-version", "3.11", "-o", out, "--no-header", "--no-annotate",
           "--index-strategy", "unsafe-best-match", env=env)
        body = out.read_text(encoding="utf-8").splitlines()
    text = "\n".join(header + body + no_deps) + "\n"
    tmp_lock = LOCK.with_suffix(".tmp")
    tmp_lock.write_text(text, encoding="utf-8")
    os.replace(tmp_lock, LOCK)
    print(f"wrote {LOCK.name}: {len(body) + len(no_deps)} packages")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("course", "test", "lock", "colab-sim"):
        print(__doc__)
        return 2
    if argv[0] == "lock":
        return lock()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    setup()
    if argv[0] == "colab-sim":  # tools/colab_sim.py is standard-library only; it needs uv from .venv
        sim = [sys.executable, ROOT / "tools" / "colab_sim.py", "--uv", BIN / "uv", *argv[1:]]
        return subprocess.run([str(c) for c in sim], cwd=ROOT).returncode
    if argv[0] == "course":
        return subprocess.run([BIN / "personalab", "run-course", *argv[1:]], env=env, cwd=ROOT).returncode
    # Tests never reuse models, replies or results cached by an earlier run (~/.cache/personalab).
    home = tempfile.mkdtemp(prefix="personalab-test-home-")
    env.setdefault("PERSONALAB_HOME", home)
    sh(BIN / "ruff", "check", "personalab", "tests", "benchmarks", "tools", "data", "dev.py", "conftest.py", cwd=ROOT)
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
        "--durations=25",
        "-p",
        "no:cacheprovider",
        *argv[1:],
    ]
    return subprocess.run(cmd, env=env, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
