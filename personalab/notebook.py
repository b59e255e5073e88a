"""What the setup cell of every notebook calls: check the install, show the active profile."""

from __future__ import annotations

import os

from . import config


def setup(quiet: bool = False) -> config.Profile:
    """Prepare a notebook session: offline Hub settings on CPU, inline plots; print the profile in one line."""
    profile = config.detect()
    if profile.name == "cpu":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None:
            ip.run_line_magic("matplotlib", "inline")
    except ImportError:
        pass
    if not quiet:
        from .backends import describe

        print(f"personalab ready: profile {profile.name}; {describe()}")
    return profile
