"""The course's notebooks, generated: ``lessons/`` and ``solutions/`` from ``notebooks_src/``
(:mod:`.notebooks`), then ``exercises/`` from ``solutions/`` (:mod:`.exercises`). Solution regions and
what belongs to which question: :mod:`.regions`; paths, names and the Colab badge: :mod:`.layout`.
"""

from __future__ import annotations

from pathlib import Path


def build() -> list[Path]:
    """Regenerate lessons/ and solutions/, then exercises/ from them. Returns the files that changed."""
    from . import exercises, notebooks

    return notebooks.build() + exercises.build()


def stale() -> list[Path]:
    """Generated notebooks (lessons, solutions, exercises) that differ from what their sources produce."""
    from . import exercises, notebooks

    return notebooks.stale() + exercises.stale()
