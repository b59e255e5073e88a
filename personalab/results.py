"""Measured results that lessons save for later ones (lesson 06 reads them all).

Each result is one JSON file ``<results_dir>/<lesson>/<name>.json`` carrying the numbers plus where
they were measured (model, backend, hardware), so a report never shows a figure without its origin.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import config
from .io import atomic_write_json


def hardware() -> str:
    """A short description of the machine: GPU name or CPU with core count."""
    if config.cuda_available():
        import torch

        return f"GPU {torch.cuda.get_device_name(0)}"
    import os

    return f"CPU {platform.machine()} x{os.cpu_count()} ({platform.processor() or platform.system()})"


def save(lesson: str, name: str, data: dict[str, Any], *, model: str | None = None) -> Path:
    """Save one result atomically, stamped with model, hardware, profile and time."""
    record = {
        "lesson": lesson,
        "name": name,
        "model": model,
        "hardware": hardware(),
        "profile": config.detect().name,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "data": data,
    }
    return atomic_write_json(config.results_dir() / lesson / f"{name}.json", record)


def load(lesson: str, name: str) -> dict[str, Any] | None:
    """The saved record, or None when that lesson has not been run yet."""
    path = config.results_dir() / lesson / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def load_all() -> dict[str, dict[str, Any]]:
    """Every saved record, keyed ``"lesson/name"``."""
    root = config.results_dir()
    return {
        f"{p.parent.name}/{p.stem}": json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*/*.json"))
    }


# ------------------------------------------------------------------------------------------ reading records
Records = Mapping[str, Mapping[str, Any]]


def record_data(records: Records, key: str) -> dict[str, Any] | None:
    """The numbers of one saved record (``"lesson/name"``), or None when it is missing or not a record."""
    rec = records.get(key)
    return dict(rec.get("data") or {}) if isinstance(rec, Mapping) else None


def model_name(model: Any) -> str:
    """A model name for a table cell: a checkpoint folder by its name ('embedded-v1', 'finetune/merged')."""
    text = str(model or "?")
    if "/" not in text or text.startswith(("ft:", "http")):
        return text
    path = Path(text)
    return f"{path.parent.name}/{path.name}" if path.name in ("merged", "adapter") else path.name


def origin(records: Records, key: str, model: Any = None) -> str:
    """'model · hardware (lesson NN)' of a saved record."""
    rec = records.get(key) or {}
    parts = [model_name(model if model is not None else rec.get("model")), str(rec.get("hardware") or "?")]
    return " · ".join(parts) + f" (lesson {key.split('/')[0]})"


def target_named(names: Iterable[Any], prefix: str) -> str | None:
    """The saved target called ``prefix`` or ``"prefix (...)"`` ('prompted (embedded-v1)'), if any."""
    return next((n for n in (names or []) if str(n) == prefix or str(n).startswith(prefix + " (")), None)
