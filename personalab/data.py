"""``personalab.data``: the persona-dataset API in one import (it lives in :mod:`personalab.dataset`)."""

from .dataset import *  # noqa: F403
from .dataset import __all__  # noqa: F401
