"""``personalab doctor``: what is active, what is missing, and how to fix each."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import urllib.request
from dataclasses import dataclass

from . import config


@dataclass
class Check:
    name: str
    ok: bool
    value: str
    fix: str = ""


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _reachable(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except Exception:
        return False


def run_checks(start_server: bool = False) -> list[Check]:
    """Collect the checks. ``start_server`` starts the local server once and sends a request."""
    from . import backends

    p = config.detect()
    checks = [
        Check("profile", True, p.name + (" (set by PERSONALAB_PROFILE)" if p.overridden else " (detected)")),
    ]
    if p.cuda:
        import torch

        checks.append(Check("GPU", True, torch.cuda.get_device_name(0)))
    else:
        checks.append(
            Check(
                "GPU",
                True,
                "none: the CPU path (PEFT + TRL, embedded model) is used",
                "optional: in Colab choose Runtime > Change runtime type > T4 GPU",
            )
        )
    checks.append(Check("Colab", True, "yes" if p.colab else "no"))
    checks.append(
        Check(
            "OpenAI API key",
            True,
            "found (not shown)" if p.api_key else "not set",
            "" if p.api_key else "optional: set OPENAI_API_KEY or a Colab secret named OPENAI_API_KEY",
        )
    )
    try:
        backend = backends.active_backend()
        checks.append(Check("chat backend", True, backends.describe()))
    except Exception as exc:  # bad override
        backend = None
        checks.append(Check("chat backend", False, str(exc), "fix PERSONALAB_BACKEND"))
    if p.api_key and p.name == "cpu" and backend == "local":
        checks[-1].fix = "a key is set but the cpu profile stays local; PERSONALAB_BACKEND=openai uses the API"
    if backend == "remote":
        url = os.environ["OPENAI_BASE_URL"].rstrip("/")
        ok = _reachable(url + "/models")
        checks.append(Check("server reachable", ok, url, "" if ok else "is the server running? check OPENAI_BASE_URL"))
    from .embedded import default_model_dir, is_built

    built = is_built()
    checks.append(
        Check(
            "embedded model",
            built,
            str(default_model_dir()) if built else "not built yet",
            ""
            if built
            else "run `personalab model build` (a few minutes on 2 cores; notebooks also build it on first use)",
        )
    )
    for dist in ("torch", "transformers", "peft", "trl", "openai", "tiktoken"):
        v = _version(dist)
        checks.append(
            Check(dist, v is not None, v or "missing", "" if v else "run `python3 dev.py course` (or pip install -e .)")
        )
    if p.cuda:
        has = importlib.util.find_spec("unsloth") is not None
        checks.append(
            Check(
                "unsloth",
                has,
                _version("unsloth") or "missing",
                "" if has else "in Colab: run the setup cell (locks/colab.txt); elsewhere: python3 dev.py",
            )
        )
    if p.colab:
        checks.extend(colab_runtime_checks())
    if start_server and backend == "local" and built:
        try:
            reply = backends.ask("Add a task: water the plants", max_tokens=20)
            checks.append(Check("local server", True, f"answered: {reply[:60]!r}"))
        except Exception as exc:
            checks.append(
                Check("local server", False, str(exc)[:300], "see the error; `personalab serve` shows the log")
            )
    return checks


def colab_runtime_checks() -> list[Check]:
    """Colab's protected packages: this runtime's versions next to the tested Colab list, and whether it moved."""
    from . import colab

    tested = colab.read_pins(colab.RUNTIME_LIST)
    names = sorted(n for n in tested if colab.is_protected(n) and not n.startswith(colab.PROTECTED_PREFIXES))
    have = {n: _version(n) for n in names}
    moved = colab.drift({n: tested[n] for n in names}, have)
    checks = [
        Check(f"colab: {n}", True, f"{have[n] or 'absent'} (tested: {tested[n]})")
        for n in names
        if "://" not in tested[n]
    ]
    source = colab.lock_source()
    if moved:
        checks.append(Check("Colab image", False, f"moved since the tested list ({source}): "
                            + ", ".join(f"{n} {a} -> {b or 'absent'}" for n, a, b in moved),
                            "the course keeps Colab's versions; if a lesson fails, see 'When Colab's image moved' "
                            "in the README"))  # fmt: skip
    else:
        checks.append(Check("Colab image", True, f"as tested ({source})"))
    return checks


def report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        mark = "ok " if c.ok else "!! "
        lines.append(f"{mark}{c.name.ljust(width)}  {c.value}")
        if c.fix:
            lines.append(f"   {' ' * width}  -> {c.fix}")
    return "\n".join(lines)
