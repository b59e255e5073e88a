"""``python -m personalab.grading --worker JOB``: the grading worker (see :mod:`personalab.grading.worker`)."""

import sys

from .worker import main

sys.exit(main(sys.argv[1:]))
