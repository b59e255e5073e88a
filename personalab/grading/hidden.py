"""The grader's hidden cases (``grader/exNN.py``, ``HIDDEN``)."""

from __future__ import annotations

from pathlib import Path

from .. import config
from ..checks import Hidden, module_name
from ..errors import InputError

#: the grader's hidden cases (``exNN.py``): instructor only, never released, never mounted in the sandbox
GRADER_DIR = config.REPO_ROOT / "grader"


def load_hidden(exercise: str, grader_dir: Path = GRADER_DIR) -> dict[str, Hidden]:
    """The grader's hidden cases of an exercise (``grader_dir/exNN.py``, ``HIDDEN``); {} when there are none."""
    import importlib.util

    path = grader_dir / f"{module_name(exercise).rsplit('.', 1)[-1]}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"_personalab_grader_{path.stem}", path)
    if spec is None or spec.loader is None:
        return {}
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    hidden = getattr(mod, "HIDDEN", {})
    if not isinstance(hidden, dict) or not all(isinstance(v, Hidden) for v in hidden.values()):
        raise InputError("HIDDEN must be a dict of question id -> Hidden(inputs, check)", path=path)
    return hidden
