"""What lesson 00 and ``doctor`` show about the embedded model."""

from __future__ import annotations

from pathlib import Path

from .build import default_model_dir, ensure_built, is_current, read_build_info


def is_built(path: str | Path | None = None) -> bool:
    return is_current(path or default_model_dir())


def describe_model(path: str | Path | None = None) -> dict[str, object]:
    """Build the model if needed and return its build record (architecture, size, steps, final loss)."""
    path = ensure_built(path)
    info = dict(read_build_info(path) or {})
    info["path"] = str(path)
    return info
