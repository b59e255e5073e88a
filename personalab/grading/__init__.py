"""Instructor grading: run every submitted notebook headless and write a CSV gradebook plus feedback files.

How one submission is graded (``grade_one``):

1. The notebook is read here; unreadable JSON or an empty file gives 0 on every question, with the reason.
2. Its stored outputs are dropped and two cells are appended: one that removes the learner's IPython hooks
   and tracers, and one that re-imports the exercise's checks module from disk and writes each question's
   *exported values* (plain JSON data of the learner's variables) to a file, tagged with a random nonce.
3. A worker process (``python -m personalab.grading --worker``) executes it with nbclient: a per-cell time
   limit (an endless cell is interrupted and the next cell runs), ``allow_errors`` (later questions are
   still graded after a failing cell), a kernel environment without API keys or proxies, and the working
   directory of a throw-away copy of the submission's folder. The whole run has a time limit too: past it,
   the worker and its kernel are killed.
4. The grader — this process, not the kernel — turns the exported values into points with the same
   :meth:`personalab.checks.Question.grade` that ``q1.check()`` uses in the notebook. Nothing the notebook
   printed is trusted, so redefining ``q1.check`` or printing "Correct" changes nothing.

With ``Isolation("bwrap")`` (``personalab grade --sandbox``) the worker and kernel run in the sandbox of
:mod:`personalab.sandbox`: own HOME, no network but the relayed model server, memory and process limits,
every process killed at the end. Questions with hidden cases (``grader/exNN.py``) are scored on those.

Modules, each importing only those above it: ``notebooks`` (reading a notebook, what its cells define),
``submissions`` (finding them, which exercise each is), ``gradebook`` (each submission's report, the CSV
gradebook, feedback, the class summary), ``scoring`` (exported values -> points), ``hidden`` (the grader's
hidden cases), ``isolation`` (the kernel's environment, sandbox or not), ``assets`` (what exercise 05 needs,
prepared once per run: the fine-tuned model and the suites' replies), ``adapter`` (exercise 04 graded from the
learner's saved LoRA adapter: checked, measured in its own sandboxed process, judged; the grader never trains),
``worker`` (the process that runs the notebook, and the cells appended to it), ``run`` (``grade_one``),
``replycache`` (the proxy in front of the model server that generates a repeated greedy request once),
``batch`` (``grade_folder``: a whole folder, with the model server behind the reply cache).
"""

from .batch import grade_folder, model_server
from .gradebook import Report, class_summary, feedback_markdown, read_gradebook, summary_path
from .hidden import load_hidden
from .isolation import Isolation, kernel_env, resolve_isolation
from .notebooks import defined_names
from .run import DEFAULT_CELL_TIMEOUT, grade_one
from .submissions import Submission, find_submissions

__all__ = ["DEFAULT_CELL_TIMEOUT", "Isolation", "Report", "Submission", "class_summary", "defined_names",
           "feedback_markdown", "find_submissions", "grade_folder", "grade_one", "kernel_env", "load_hidden",
           "model_server", "read_gradebook", "resolve_isolation", "summary_path"]
