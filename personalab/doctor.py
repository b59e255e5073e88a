"""``personalab doctor``: what is active, what is missing, and how to fix each."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import urllib.request
from dataclasses import dataclass

from . import config
from .errors import SettingError


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
                "none: the CPU profile is used (Unsloth's CPU mode trains, float32)",
                "optional: in Colab choose Runtime > Change runtime type > T4 GPU",
            )
        )
    checks.append(Check("Colab", True, "yes" if p.colab else "no"))
    base = config.base_model(p.name)
    chosen = " (set by PERSONALAB_BASE_MODEL)" if os.environ.get(config.BASE_MODEL_ENV) else ""
    checks.append(Check("base model", True, f"{config.model_title(base)}{chosen}: every lesson's prompted, "
                        "fine-tuned and hybrid persona", "" if chosen else
                        "optional: PERSONALAB_BASE_MODEL=HuggingFaceTB/SmolLM2-360M-Instruct (a Hub id or a folder) "
                        "changes it for every lesson"))
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
    except Exception as exc:  # a bad override (SettingError says what to fix)
        backend = None
        checks.append(Check("chat backend", False, getattr(exc, "problem", str(exc)),
                            getattr(exc, "fix", "fix PERSONALAB_BACKEND")))
    if p.api_key and p.name == "cpu" and backend == "local":
        checks[-1].fix = "a key is set but the cpu profile stays local; PERSONALAB_BACKEND=openai uses the API"
    if backend == "remote":
        url = os.environ["OPENAI_BASE_URL"].rstrip("/")
        ok = _reachable(url + "/models")
        checks.append(Check("server reachable", ok, url, "" if ok else "is the server running? check OPENAI_BASE_URL"))
    checks.append(local_model_check())
    for dist in ("torch", "transformers", "peft", "trl", "openai", "tiktoken"):
        v = _version(dist)
        checks.append(
            Check(dist, v is not None, v or "missing", "" if v else "run `python3 dev.py course` (or pip install -e .)")
        )
    trainer = os.environ.get("PERSONALAB_TRAINER", "").strip().lower() or "unsloth"
    if trainer == "peft":
        checks.append(Check("trainer", True, "PEFT + TRL (PERSONALAB_TRAINER=peft: the fallback, not Unsloth)"))
    else:  # the default trainer on every machine (Unsloth's CPU mode without a GPU)
        has = importlib.util.find_spec("unsloth") is not None
        checks.append(
            Check(
                "unsloth",
                has,
                (_version("unsloth") or "missing") + ("" if p.cuda else " (its CPU mode: no GPU)"),
                "" if has else "in Colab: run the setup cell (locks/colab.txt); elsewhere `python3 dev.py course` "
                "(installs unsloth + unsloth-zoo with --no-deps), or set PERSONALAB_TRAINER=peft",
            )
        )
    if p.colab:
        checks.extend(colab_runtime_checks())
    if start_server and backend == "local" and checks_ok(checks, "local model"):
        try:
            reply = backends.ask("Add a task: water the plants", max_tokens=20)
            checks.append(Check("local server", True, f"answered: {reply[:60]!r}"))
        except Exception as exc:
            checks.append(
                Check("local server", False, str(exc)[:300], "see the error; `personalab serve` shows the log")
            )
    return checks


def checks_ok(checks: list[Check], name: str) -> bool:
    return any(c.name == name and c.ok for c in checks)


def local_model_check() -> Check:
    """The model the local server would serve (PERSONALAB_LOCAL_MODEL): it exists and its config and tokenizer load."""
    from .embedded.build import REFERENCE_DIR, default_model_dir, is_current, read_build_info, source_hash
    from .models import checked_model_dir, looks_like_path

    choice = os.environ.get("PERSONALAB_LOCAL_MODEL") or config.base_model()
    if choice != "smollm2" and not looks_like_path(choice) and choice != "embedded":
        return Check("local model", True, f"{choice} (a Hub model: downloaded on first use, needs the network)")
    if choice == "smollm2":
        from .errors import BackendError
        from .smollm import default_smollm2_dir, find_gguf

        path = default_smollm2_dir()
        try:
            find_gguf()
        except BackendError as exc:
            lines = str(exc).splitlines()
            return Check("local model", False, "smollm2: " + lines[0], lines[-1].strip())
        if not (path / "config.json").exists():
            return Check("local model", True, f"smollm2: converted on first use (about 30 s) into {path}",
                         "or now: `personalab model smollm2`")
    elif choice == "embedded":
        path = default_model_dir()
        if not is_current(path):
            return Check("local model", False, f"embedded: no model at {path}",
                         "reinstall the package (the reference build ships in personalab/embedded/reference/) "
                         "or run `personalab model build`")
    else:
        try:
            path = checked_model_dir(choice)
        except SettingError as exc:
            return Check("local model", False, exc.problem, exc.fix)
    try:
        from transformers import AutoConfig, AutoTokenizer

        config_ = AutoConfig.from_pretrained(path)
        AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # any loading failure is reported, not raised
        return Check("local model", False, f"{path}: does not load ({type(exc).__name__}: {str(exc)[:160]})",
                     "point PERSONALAB_LOCAL_MODEL at a folder written by save_pretrained")
    what = f"{choice}: {path} ({config_.model_type})"
    if path == REFERENCE_DIR:
        info = read_build_info(path) or {}
        what = f"embedded: the shipped reference build ({info.get('params', 0):,} parameters, {path})"
        if info.get("source_sha256") != source_hash():
            return Check("local model", True, what, "the builder changed since this build: maintainers run "
                         "`personalab model build --reference --force`")
    return Check("local model", True, what)


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
