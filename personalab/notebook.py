"""What the setup cell of every notebook calls: check the install, show the active profile."""

from __future__ import annotations

import os

from . import config


def setup(quiet: bool = False, use_drive: bool = False) -> config.Profile:
    """Prepare a notebook session: offline Hub settings on CPU, inline plots; print the profile in one line.

    ``use_drive=True`` (Colab only) keeps the course's work on the learner's Google Drive, so a lesson opened from
    its own badge finds what earlier lessons made (:func:`personalab.colab.use_drive`); declined or failing, the
    lesson still works, with a one-line note."""
    if use_drive:
        from .colab import use_drive as mount_drive

        mount_drive()
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
