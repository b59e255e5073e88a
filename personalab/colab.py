"""The Colab install: add what the course needs on top of Colab's own runtime, never replacing it.

Standard library only: the notebooks' setup cell imports this from the cloned repository *before* anything
is installed. ``locks/colab.txt`` (made by ``tools/colab_lock.py``) pins everything the course needs that
Colab lacks or ships at an unsuitable version; it is installed with ``pip install --no-deps`` (nothing is
resolved in Colab). Colab's kernel, frontend and CUDA stack (:data:`PROTECTED`) are never installed over.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK = REPO_ROOT / "locks" / "colab.txt"
RUNTIME_LIST = REPO_ROOT / "locks" / "colab-pip-freeze.gpu.txt"

#: What Colab's kernel, frontend and GPU stack rely on: kept exactly as Colab ships them.
PROTECTED = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "torchcodec",
        "triton",
        "numpy",
        "ipykernel",
        "ipython",
        "ipywidgets",
        "widgetsnbextension",
        "jupyterlab-widgets",
        "notebook",
        "jupyter-client",
        "jupyter-core",
        "jupyter-server",
        "tornado",
        "traitlets",
        "pyzmq",
        "matplotlib-inline",
        "pandas",
        "requests",
        "google-colab",
    }
)
#: Name prefixes of the CUDA libraries that come with Colab's torch build.
PROTECTED_PREFIXES = ("nvidia-", "cuda-")


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_protected(name: str) -> bool:
    n = normalize(name)
    return n in PROTECTED or n.startswith(PROTECTED_PREFIXES)


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a freeze or lock file, by normalized name (``name @ url`` lines give ``url``)."""
    pins: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if " @ " in line:
            name, url = line.split(" @ ", 1)
            pins[normalize(name)] = url.strip()
        elif "==" in line:
            name, version = line.split("==", 1)
            pins[normalize(name)] = version.split(";", 1)[0].strip()
        else:
            raise ValueError(f"{path}:{lineno}: {raw!r} is not `name==version`; regenerate with tools/colab_lock.py")
    return pins


def lock_source(path: Path = LOCK) -> str:
    """The ``# source:`` header line of the Colab lock (where Colab's list came from, and its commit)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# source:"):
            return line.removeprefix("# source:").strip()
    return "unknown"


def installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def public(version: str) -> str:
    """``2.11.0+cu128`` -> ``2.11.0``: the local build tag does not change what a package offers."""
    return version.split("+", 1)[0]


@dataclass(frozen=True)
class Step:
    name: str
    have: str | None
    want: str

    def __str__(self) -> str:
        return f"{self.name} {self.want}" if self.have is None else f"{self.name} {self.have} -> {self.want}"


def plan(lock: dict[str, str], have: dict[str, str | None]) -> list[Step]:
    """What to install: every locked package that is missing or at another version, never a protected one."""
    return [
        Step(name, have.get(name), want)
        for name, want in sorted(lock.items())
        if not is_protected(name) and (have.get(name) is None or public(have[name] or "") != public(want))
    ]


def drift(tested: dict[str, str], have: dict[str, str | None]) -> list[tuple[str, str, str | None]]:
    """Protected packages whose runtime version differs from Colab's tested list: (name, tested, runtime)."""
    return [
        (name, tested[name], have.get(name))
        for name in sorted(tested)
        if is_protected(name)
        and not name.startswith(PROTECTED_PREFIXES)
        and "://" not in tested[name]
        and public(have.get(name) or "absent") != public(tested[name])
    ]


def _personalab_is_editable_from(repo: Path) -> bool:
    """Whether an editable install of ``repo`` is in place (``direct_url.json`` of any ``personalab`` found:
    the checkout's own ``personalab.egg-info`` on ``sys.path`` has none)."""
    uri = repo.resolve().as_uri()
    return any(uri in (d.read_text("direct_url.json") or "") for d in md.distributions(name="personalab"))


def _pip(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def _fail(result: subprocess.CompletedProcess, what: str) -> None:
    print(result.stdout[-3000:], result.stderr[-6000:], sep="\n")
    raise RuntimeError(
        f"Colab setup failed while installing {what}: pip's message is printed above. What to do: "
        "Runtime > Disconnect and delete runtime, then run this cell again (a fresh runtime has only Colab's "
        "packages). If it fails again, Colab's image may have moved: run `!personalab doctor` and see "
        "'When Colab's image moved' in the README."
    )


def _has_extension_modules(dist: str) -> bool:
    files = md.distribution(dist).files or []
    return any(str(f).endswith((".so", ".pyd")) for f in files)


def _loaded_modules_of(dist: str) -> list[str]:
    """Modules of ``dist`` that this process has already imported."""
    found = []
    for f in md.distribution(dist).files or []:
        path = f.as_posix()
        if path.endswith(".py"):
            mod = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        elif path.endswith(".so"):
            mod = path.replace("/", ".").rsplit(".", 1)[0].split(".cpython", 1)[0].split(".abi3", 1)[0]
        else:
            continue
        if mod in sys.modules:
            found.append(mod)
    return found


def _restart_needed(names: list[str]) -> list[str]:
    """Replaced packages with compiled code that this process had already imported: the old binaries are loaded.

    Pure-Python packages (certifi, ...) are picked up again on their next import and need no restart.
    """
    return sorted(n for n in names if _has_extension_modules(n) and _loaded_modules_of(n))


def install(repo: Path = REPO_ROOT, lock_path: Path = LOCK, runtime_list: Path = RUNTIME_LIST) -> list[Step]:
    """Install the Colab lock's missing pieces and this repository (editable), all with ``--no-deps``.

    Prints what it installed and how long it took; a second run installs nothing. Raises ``RuntimeError``
    (after printing pip's message) when pip fails or when a protected package changed anyway, and when a
    replaced package's compiled modules were already imported (a restart is then unavoidable: it says so).
    """
    t0 = time.perf_counter()
    lock = read_pins(lock_path)
    tested = read_pins(runtime_list)
    protected_before = {n: installed(n) for n in tested if is_protected(n)}
    steps = plan(lock, {n: installed(n) for n in lock})
    if steps:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
            fh.write("".join(f"{s.name}=={s.want}\n" for s in steps))
        try:
            result = _pip(["-q", "-r", fh.name])
        finally:
            os.unlink(fh.name)
        if result.returncode:
            _fail(result, f"{len(steps)} packages from {lock_path.name}")
    editable = not _personalab_is_editable_from(repo)
    if editable:
        result = _pip(["-q", "-e", str(repo)])
        if result.returncode:
            _fail(result, f"personalab from {repo}")
    importlib.invalidate_caches()
    changed = [(n, v, installed(n)) for n, v in protected_before.items() if installed(n) != v]
    if changed:
        raise RuntimeError(
            "Colab setup changed packages Colab's runtime relies on: "
            + ", ".join(f"{n} {a} -> {b}" for n, a, b in changed)
            + ". This is a bug in locks/colab.txt: Runtime > Disconnect and delete runtime, and report it."
        )
    seconds = time.perf_counter() - t0
    if steps or editable:
        print(
            f"Colab setup: installed {len(steps)} packages"
            + (" and personalab" if editable else "")
            + f" in {seconds:.0f} s (Colab's own torch, numpy, ipykernel, ipywidgets... kept)."
        )
        if steps:
            print("  " + ", ".join(map(str, steps)))
    else:
        print(f"Colab setup: nothing to install ({len(lock)} locked packages in place), {seconds:.1f} s.")
    moved = drift(tested, {n: installed(n) for n in tested if is_protected(n)})
    if moved:
        print(
            f"Note: Colab's image has moved since the tested list ({lock_source(lock_path)}): "
            + ", ".join(f"{n} {a} -> {b or 'absent'}" for n, a, b in moved[:6])
            + ". The course keeps Colab's versions; `!personalab doctor` lists them all."
        )
    stale = _restart_needed([s.name for s in steps])
    if stale:
        raise RuntimeError(
            "Restart needed: this session had already imported "
            + ", ".join(stale)
            + " before the install replaced it, so the old compiled code is still loaded. Runtime > Restart "
            "session, then run this cell again: it will install nothing and continue."
        )
    return steps


# ------------------------------------------------------------------------------------------------- Google Drive
DRIVE_MOUNT = "/content/drive"
#: Where on the learner's Drive the course keeps what lessons produce (lesson 04's model, results, reply cache).
DRIVE_FOLDER = "MyDrive/persona-lab"


def use_drive(folder: str = DRIVE_FOLDER, *, mount_point: str = DRIVE_MOUNT) -> Path | None:
    """Keep the course's work on the learner's Google Drive, so a lesson opened later from its own badge (a new
    runtime) finds lesson 04's model, the saved results and the reply cache.

    In Colab only: mounts Drive (Colab asks the learner to allow it) and points ``PERSONALAB_HOME`` at
    ``mount_point/folder``; base models stay on the runtime's disk (``PERSONALAB_MODELS``), they are re-made
    quickly. Returns the folder, or None with a one-line note when not in Colab, when the learner declines, or when
    Drive cannot be written (full, unavailable): the lesson then works in the runtime's own home and recomputes
    what an earlier lesson would have left, saying how long that takes."""
    from . import config

    if not config.in_colab():
        print(f"Google Drive: only in Colab; the course keeps its work in {config.home()}.")
        return None
    path = Path(mount_point) / folder
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(mount_point)
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".personalab-write-test"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except Exception as exc:  # noqa: BLE001 - declined, no access, Drive full: all leave the runtime's home
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        print(f"Google Drive not used ({reason}): the course keeps its work in {config.home()} for this runtime only.")
        return None
    os.environ.setdefault("PERSONALAB_MODELS", str(config.models_dir()))
    os.environ["PERSONALAB_HOME"] = str(path)
    print(f"Google Drive: the course keeps lesson 04's model, results and reply cache in {path}.")
    return path
