"""A minimal Colab-like frontend: classic Notebook 6.5.7 with ipywidgets 7.7.1, in its own cached venv.

``python tests/ipywidgets7_env.py`` (or :func:`ensure`) creates the venv under
``$PERSONALAB_ENVS/ipywidgets7-<hash>`` (default ``~/.cache/personalab-envs``) from
``tests/ipywidgets7-requirements.txt`` with ``pip install --no-deps`` (an exact, complete list: no resolver),
and makes this repository importable in it (a ``.pth`` file, what ``pip install --no-deps -e .`` amounts to,
rewritten on every call so a new clone uses its own code). The hash covers the list and the Python version:
an environment is reused only when it is provably the one the list describes, and it holds packages only,
never models or results, so tests with a fresh ``PERSONALAB_HOME`` still reuse it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = Path(__file__).with_name("ipywidgets7-requirements.txt")


def env_dir() -> Path:
    base = Path(os.environ.get("PERSONALAB_ENVS") or Path.home() / ".cache" / "personalab-envs").expanduser()
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    return base / f"ipywidgets7-{key}"


def _link_repo(venv: Path) -> None:
    purelib = subprocess.run(
        [str(python_of(venv)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    pth = Path(purelib) / "personalab-repo.pth"
    tmp = pth.with_suffix(".tmp")
    tmp.write_text(f"{ROOT}\n")
    tmp.replace(pth)


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure(python: str = sys.executable) -> Path:
    """The venv's python, building the venv first when it is missing or was left half-built.

    The ``READY`` marker is written last (temp file, then rename): without it the directory is rebuilt.
    """
    venv = env_dir()
    if (venv / "READY").is_file():
        _link_repo(venv)
        return python_of(venv)
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(python_of(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    try:
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{REQUIREMENTS}: pip install --no-deps failed ({exc.returncode}), see above") from None
    _link_repo(venv)
    tmp = venv / "READY.tmp"
    tmp.write_text(REQUIREMENTS.read_text())
    tmp.rename(venv / "READY")
    return python_of(venv)


if __name__ == "__main__":
    print(ensure())
