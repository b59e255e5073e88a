"""The training examples of a run: from a list, a JSONL file or a ``datasets.Dataset`` (only role and content
kept), and lesson 03's ``train.jsonl`` / ``eval.jsonl`` (written with the offline generator when missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from . import masking

DATASET_FIX = ("generate it in lesson 03 or with `personalab data generate`, "
               "or pass a list of {'messages': [...]} examples")


def load_examples(dataset: Any) -> tuple[list[dict[str, Any]], str | None]:
    """(examples with only role/content, source name) from a list, a JSONL path, or a ``datasets.Dataset``."""
    source = None
    if dataset is None:
        from ..dataset import default_dataset_paths

        dataset = default_dataset_paths().train
    if isinstance(dataset, (str, Path)):
        from ..dataset import read_examples

        source = str(dataset)
        if not Path(dataset).exists():
            raise InputError("training data not found", path=dataset, fix=DATASET_FIX)
        dataset = read_examples(dataset)
    rows = list(dataset)
    if not rows:
        raise InputError("the training data is empty", path=source, fix=DATASET_FIX)
    out = []
    for n, ex in enumerate(rows, 1):
        try:
            msgs = masking.messages_of(ex)
            out.append({"messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in msgs]})
        except (KeyError, TypeError):
            raise InputError("a message needs 'role' and 'content'", path=source, line=n, field="messages",
                             fix="validate the file with `personalab data validate FILE`") from None
    return out, source


def dataset_paths(*, verbose: bool = True) -> Any:
    """Lesson 03's ``train.jsonl`` / ``eval.jsonl``; written with the offline generator when missing."""
    from ..dataset import build_default_datasets, default_dataset_paths

    paths = default_dataset_paths()
    if not (paths.train.exists() and paths.eval.exists()):
        if verbose:
            print("lesson 03's dataset is missing: writing it with the offline generator")
        build_default_datasets(paths=paths, progress=False)
    return paths
