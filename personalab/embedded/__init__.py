"""The embedded model: a tiny chat model built from scratch on CPU, offline and deterministically.

``ensure_built()`` returns its folder (building it on first use); it is the course's default backend.
"""

from .build import (
    BUILDER_VERSION,
    EMBEDDED_DIR_NAME,
    build,
    default_model_dir,
    ensure_built,
    is_current,
    read_build_info,
)
from .corpus import STOCK_PHRASES, build_corpus, find_forbidden, heldout_requests

__all__ = [
    "STOCK_PHRASES",
    "BUILDER_VERSION",
    "EMBEDDED_DIR_NAME",
    "build",
    "build_corpus",
    "default_model_dir",
    "ensure_built",
    "find_forbidden",
    "heldout_requests",
    "is_current",
    "read_build_info",
]

from .info import describe_model, is_built  # noqa: E402

__all__ += ["describe_model", "is_built"]
