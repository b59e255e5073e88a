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
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config, sandbox
from .checks import Exercise, Hidden, Question, Result, load_exercise, module_name
from .errors import InputError
from .io import atomic_write_text
from .sandbox import Limits

CSV_FIELDS = ("student", "notebook", "exercise", "question", "points", "max", "status", "reason")
DEFAULT_CELL_TIMEOUT = 120
GRADING_CELL_TIMEOUT = 120
KERNEL_STARTUP = 60
#: the grader's hidden cases (``exNN.py``): instructor only, never released, never mounted in the sandbox
GRADER_DIR = config.REPO_ROOT / "grader"
#: environment variables never passed to a learner's kernel (besides any name containing KEY/TOKEN/SECRET/PASSWORD)
DROPPED_ENV = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
               "FTP_PROXY", "JPY_PARENT_PID", "JUPYTER_TOKEN")
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)

RESET_CELL = """\
# added by `personalab grade` (not part of the submission): remove hooks a submission may have installed
def _personalab_reset():
    import sys
    sys.settrace(None)
    sys.setprofile(None)
    try:
        shell = get_ipython()
    except NameError:
        return
    for callbacks in shell.events.callbacks.values():
        callbacks.clear()
    shell.input_transformers_post.clear()
    shell.ast_transformers.clear()
_personalab_reset()
del _personalab_reset"""

EXPORT_CELL = """\
# added by `personalab grade` (not part of the submission): export the answers as data; grading happens outside
def _personalab_export(path={path!r}, nonce={nonce!r}, module={module!r}, hidden={hidden!r}):
    import importlib, io, json, sys
    for name in [m for m in list(sys.modules) if m == module or m.startswith("personalab.checks")]:
        del sys.modules[name]
    exercise = importlib.import_module(module).EXERCISE
    cases = json.load(io.open(hidden, encoding="utf-8")) if hidden else {{}}
    ns = globals()
    for question in exercise.questions:
        values = question.export(ns, cases.get(question.id))
        line = json.dumps({{"nonce": nonce, "question": question.id, "values": values}})
        with io.open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\\n")
_personalab_export()
del _personalab_export"""


# --------------------------------------------------------------------------------------------- finding


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path
    exercise: str | None  # "01"; None when it cannot be told from the name or the metadata
    folder: Path | None = None  # the student's own folder (copied as the working directory), if any


def _exercise_of(path: Path, forced: str | None) -> str | None:
    if forced:
        return forced
    from .authoring.layout import exercise_number

    number = exercise_number(path)
    if number:
        return number
    with contextlib.suppress(Exception):
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("personalab", {})
        if isinstance(meta, dict) and isinstance(meta.get("exercise"), str):
            return meta["exercise"]
    return None


def find_submissions(root: str | Path, *, exercise: str | None = None) -> list[Submission]:
    """Notebooks under ``root``: ``root/STUDENT.ipynb`` or ``root/STUDENT/*.ipynb`` (one folder per student)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("submissions folder not found", path=root, fix="pass the folder that holds the notebooks")
    subs: list[Submission] = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and path.suffix == ".ipynb":
            subs.append(Submission(path.stem, path, _exercise_of(path, exercise)))
        elif path.is_dir():
            for nb in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in nb.parts:
                    subs.append(Submission(path.name, nb, _exercise_of(nb, exercise), folder=path))
    return subs


# -------------------------------------------------------------------------------------------- reports


@dataclass
class Report:
    """Everything known about one graded notebook."""

    submission: Submission
    results: list[Result]
    cell_errors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exercise_title: str = ""

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.results)

    def rows(self, root: Path | None = None) -> list[dict[str, Any]]:
        nb = str(self.submission.path.relative_to(root) if root else self.submission.path)
        return [
            {"student": self.submission.student, "notebook": nb, "exercise": self.submission.exercise or "",
             "question": r.question, "points": f"{r.points:g}", "max": f"{r.max_points:g}", "status": r.status,
             "reason": r.reason}
            for r in self.results
        ]


def _all_zero(exercise: Exercise, status: str, reason: str) -> list[Result]:
    return [Result(q.id, 0.0, float(q.points), status, reason) for q in exercise.questions]


# ------------------------------------------------------------------------------------------ execution


def kernel_env(base_url: str | None = None, model: str | None = None, api_key: str | None = None) -> dict[str, str]:
    """The learner kernel's environment: no secrets, no proxies, offline Hub, the grader's model server.

    ``api_key`` is passed on only for a workshop server (never for api.openai.com)."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV and not _SECRET.search(k)}
    env.pop("OPENAI_BASE_URL", None)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PERSONALAB_GRADING": "1",
                "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"})
    if base_url:
        env["OPENAI_BASE_URL"] = base_url
        if api_key and "api.openai.com" not in base_url:
            env["OPENAI_API_KEY"] = api_key
    if model:
        env["PERSONALAB_MODEL"] = model
    pkg_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _prepare(nb: Any, *, values_path: str, nonce: str, module: str, hidden_path: str | None = None) -> Any:
    """The submission with outputs dropped and the two grading cells appended."""
    import nbformat

    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.cells.append(nbformat.v4.new_code_cell(RESET_CELL, metadata={"tags": ["personalab-grader"]}))
    export = EXPORT_CELL.format(path=values_path, nonce=nonce, module=module, hidden=hidden_path)
    nb.cells.append(nbformat.v4.new_code_cell(export, metadata={"tags": ["personalab-grader"]}))
    return nb


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(pid, signal.SIGKILL)


@dataclass(frozen=True)
class Isolation:
    """How submissions run: ``mode`` "bwrap" (the sandbox of :mod:`personalab.sandbox`) or "none"."""

    mode: str = "none"
    limits: Limits = field(default_factory=Limits)
    relay_dir: Path | None = None  # folder of the model relay's Unix socket (bwrap mode, http server)
    grader_dir: Path = GRADER_DIR


def resolve_isolation(choice: str, *, limits: Limits | None = None, grader_dir: Path | None = None) -> Isolation:
    """``auto`` → the sandbox where bubblewrap works, else unsandboxed with a warning; ``bwrap`` → the sandbox
    or an InputError saying why it cannot run; ``none`` → unsandboxed."""
    extra = {"limits": limits or Limits(), "grader_dir": grader_dir or GRADER_DIR}
    if choice == "none":
        return Isolation("none", **extra)
    why = sandbox.probe()
    if why is None:
        return Isolation("bwrap", **extra)
    if choice == "bwrap":
        raise InputError(f"cannot sandbox the submissions: {why}", field="--sandbox",
                         fix="install bubblewrap, or pass --sandbox none to grade without a sandbox")
    if choice != "auto":
        raise InputError(f"unknown sandbox {choice!r}", field="--sandbox", fix="use auto, bwrap or none")
    print(f"warning: grading WITHOUT a sandbox: {why}. Submissions run with your user's rights "
          "(see docs/INSTRUCTORS.md).", file=sys.stderr)
    return Isolation("none", **extra)


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


def grade_one(
    sub: Submission,
    *,
    cell_timeout: float = DEFAULT_CELL_TIMEOUT,
    notebook_timeout: float | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    isolation: Isolation | None = None,
) -> Report:
    """Grade one notebook. Never raises for anything the submission does: problems become reasons."""
    start = time.monotonic()
    isolation = isolation or Isolation()
    if sub.exercise is None:
        res = Result("?", 0.0, 0.0, "error", "cannot tell which exercise this is: name the file NN_*.ipynb "
                     "(like the exercise notebook) or pass --exercise")
        return Report(sub, [res], seconds=time.monotonic() - start)
    try:
        exercise = load_exercise(sub.exercise)
    except Exception as exc:  # noqa: BLE001
        res = Result("?", 0.0, 0.0, "error", f"no checks for exercise {sub.exercise!r} ({type(exc).__name__}: {exc})")
        return Report(sub, [res], seconds=time.monotonic() - start)
    report = Report(sub, [], exercise_title=exercise.title)
    try:
        hidden = load_hidden(sub.exercise, isolation.grader_dir)
        env = kernel_env(base_url, model, api_key)
        report = _run_and_grade(sub, exercise, report, cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                                env=env, isolation=isolation, hidden=hidden)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one bad notebook never stops the gradebook
        report.results = _all_zero(exercise, "error", f"grading failed ({type(exc).__name__}: {exc})")
    report.seconds = time.monotonic() - start
    return report


def _read_notebook(path: Path) -> Any:
    """The notebook at ``path``; ValueError with a short, learner-readable reason when it is not one."""
    import nbformat

    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise ValueError("the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
                         "(was it truncated or edited by hand?)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "nbformat" not in data:
        raise ValueError("it is JSON but not a Jupyter notebook (no 'cells' list or 'nbformat' version)")
    nb = nbformat.reads(text, as_version=4)
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ValueError(f"cell {i} is not a notebook cell")
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        if not isinstance(cell.get("source"), str):
            raise ValueError(f"cell {i} has no source text")
        cell.setdefault("metadata", {})
    return nb


def exercise_names(exercise: Exercise) -> set[str]:
    return {n for q in exercise.questions for n in q.names}


def other_exercise(nb: Any, expected: str) -> str | None:
    """The exercise a notebook really is when it is not ``expected`` ("03"), from its metadata, else from
    which exercise's variables its cells define; None when it looks like ``expected`` (or like nothing)."""
    meta = nb.get("metadata", {}).get("personalab", {})
    claimed = meta.get("exercise") if isinstance(meta, dict) else None
    want = module_name(expected)
    number = want.rsplit(".", 1)[-1].removeprefix("ex")
    if isinstance(claimed, str) and claimed.isdigit() and claimed.lstrip("0") != number.lstrip("0"):
        return claimed
    if not want.startswith("personalab.checks."):
        return None
    defined = set().union(*(defined_names(c.source) for c in nb.cells if c.get("cell_type") == "code"))
    own = exercise_names(load_exercise(expected))
    if own & defined:
        return None
    for path in sorted(Path(__file__).parent.joinpath("checks").glob("ex[0-9][0-9].py")):
        number = path.stem[2:]
        with contextlib.suppress(Exception):
            names = exercise_names(load_exercise(number))
            if number != expected.removeprefix("ex") and len(names & defined) * 2 >= len(names):
                return number
    return None


def _exercise_label(number: str) -> str:
    with contextlib.suppress(Exception):
        return f"exercise {number} ({load_exercise(number).title})"
    return f"exercise {number}"


def _sandbox_paths(job: dict[str, Any], tmpdir: Path) -> dict[str, Any]:
    """The job with the grader's temporary paths replaced by where the sandbox mounts them."""
    def inside(value: str) -> str:
        return value.replace(str(tmpdir), sandbox.JOB)

    return {k: inside(v) if isinstance(v, str) else v for k, v in job.items()}


def _run_and_grade(sub: Submission, exercise: Exercise, report: Report, *, cell_timeout: float,
                   notebook_timeout: float | None, env: dict[str, str], isolation: Isolation | None = None,
                   hidden: dict[str, Hidden] | None = None) -> Report:
    import nbformat

    isolation = isolation or Isolation()
    hidden = hidden or {}
    try:
        nb = _read_notebook(sub.path)
    except Exception as exc:  # noqa: BLE001 - malformed JSON, empty file, not a notebook
        msg = str(exc).splitlines()[0][:240] if str(exc) else type(exc).__name__
        report.results = _all_zero(exercise, "error", f"the notebook file could not be read ({msg})")
        return report
    other = other_exercise(nb, sub.exercise or "")
    if other is not None:
        reason = (f"this notebook is {_exercise_label(other)}, not {_exercise_label(sub.exercise or '')}: "
                  f"hand in the notebook of exercise {sub.exercise} (or grade this one with --exercise {other})")
        report.results = _all_zero(exercise, "error", reason)
        return report
    n_code = sum(c.get("cell_type") == "code" for c in nb.cells)
    # room for one re-run up to a cell that killed the kernel (keeps the points of the questions before it)
    limit = notebook_timeout or (2 * KERNEL_STARTUP + GRADING_CELL_TIMEOUT + cell_timeout * (2 * n_code + 1))
    sandboxed = isolation.mode == "bwrap"
    # the grader's files and the kernel's working directory are unrelated folders
    with tempfile.TemporaryDirectory(prefix="personalab-grade-") as tmp, \
            tempfile.TemporaryDirectory(prefix="personalab-work-") as work:
        tmpdir = Path(tmp)
        workdir = Path(work) / "work"
        if sub.folder is not None:
            shutil.copytree(sub.folder, workdir, symlinks=True, ignore=shutil.ignore_patterns("*.ipynb", ".*"))
        else:
            workdir.mkdir()
        nonce = secrets.token_hex(16)
        values_path = tmpdir / f"values-{secrets.token_hex(8)}.jsonl"
        hidden_path = None
        if hidden:
            hidden_path = tmpdir / "hidden.json"
            hidden_path.write_text(json.dumps({qid: h.inputs for qid, h in hidden.items()}), encoding="utf-8")
        job = {"notebook": str(tmpdir / "submission.ipynb"), "cwd": str(workdir),
               "cell_timeout": cell_timeout, "grading_timeout": GRADING_CELL_TIMEOUT,
               "status": str(tmpdir / "status.json"), "kernel_pid": str(tmpdir / "kernel.pid"),
               "progress": str(tmpdir / "progress"), "env": env}
        values_in_kernel = str(values_path)
        hidden_in_kernel = str(hidden_path) if hidden_path else None
        if sandboxed:
            job = _sandbox_paths(job, tmpdir)
            job["cwd"] = sandbox.WORK
            values_in_kernel = values_in_kernel.replace(str(tmpdir), sandbox.JOB)
            hidden_in_kernel = hidden_in_kernel.replace(str(tmpdir), sandbox.JOB) if hidden_in_kernel else None
            job["env"] = _sandbox_env(env, relayed=isolation.relay_dir is not None)
            if isolation.relay_dir is not None and env.get("OPENAI_BASE_URL"):
                job["relay"] = {"base_url": job["env"]["OPENAI_BASE_URL"], "socket": f"{sandbox.RELAY_DIR}/model.sock"}
        prepared = _prepare(nb, values_path=values_in_kernel, nonce=nonce, module=module_name(sub.exercise or ""),
                            hidden_path=hidden_in_kernel)
        (tmpdir / "submission.ipynb").write_text(nbformat.writes(prepared, version=4), encoding="utf-8")
        (tmpdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        status = _run_worker(tmpdir, job, limit, prepared.cells, workdir=workdir, isolation=isolation)
        report.cell_errors = status.get("cell_errors", [])
        if status.get("note"):
            report.notes.append(status["note"])
        exported = _read_values(values_path, nonce)
    stopped = status.get("note") or "the notebook stopped before the grading step"
    rerun_upto = status.get("rerun_upto")
    for q in exercise.questions:
        if q.id in exported and rerun_upto is not None and (_defined_from(nb, q.names, rerun_upto) or not
                                                            _defined_before(nb, q.names, rerun_upto)):
            report.results.append(Result(q.id, 0.0, float(q.points), "error", f"not graded: {stopped}"))
        elif q.id in exported:
            report.results.append(_grade_question(q, exported[q.id], hidden.get(q.id), nb, report.cell_errors))
        else:
            report.results.append(Result(q.id, 0.0, float(q.points), "error", f"not graded: {stopped}"))
    return report


def _defined_from(nb: Any, names: Sequence[str], first: int) -> bool:
    """Whether a code cell at index ``first`` or later (re)defines one of ``names``."""
    return any(c.get("cell_type") == "code" and set(names) & defined_names(c.source) for c in nb.cells[first:])


def _defined_before(nb: Any, names: Sequence[str], end: int) -> bool:
    """Whether every one of ``names`` is bound by some code cell before index ``end``."""
    bound = set().union(*(defined_names(c.source) for c in nb.cells[:end] if c.get("cell_type") == "code"))
    return set(names) <= bound


def _grade_question(q: Question, values: dict[str, Any], hidden: Hidden | None, nb: Any,
                    cell_errors: list[dict[str, Any]]) -> Result:
    """One question's verdict: with the grader's hidden check where it has one, and "not attempted" when the
    cells that define its variables still hold the exercise's ``NotImplementedError`` placeholder."""
    if hidden is not None and values.get("__hidden__") is True:
        result = q.grade(values, check_fn=hidden.check)
    elif hidden is not None and q.probe is not None and "__probe_error__" not in values and \
            not any(isinstance(v, dict) and set(v) == {"__missing__"} for v in values.values()):
        result = Result(q.id, 0.0, float(q.points), "error", "not graded: the hidden cases did not run")
    else:
        result = q.grade(values)
    if result.status == "not-attempted":
        result.reason = _explain_missing(values, nb, cell_errors) or result.reason
    elif result.status in ("incorrect", "error"):
        untouched = _placeholder_cell(nb, q.names)
        if untouched is not None:
            result = Result(q.id, 0.0, float(q.points), "not-attempted",
                            f"{cell_label(nb.cells, untouched)} still raises NotImplementedError: "
                            "fill in your code there")
    return result


def _placeholder_cell(nb: Any, names: Sequence[str]) -> int | None:
    """The first code cell defining one of ``names`` that still contains a ``raise NotImplementedError``."""
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and set(names) & defined_names(cell.source) and \
                re.search(r"^\s*raise NotImplementedError\b", cell.source, re.MULTILINE):
            return i
    return None


def _sandbox_env(env: dict[str, str], *, relayed: bool) -> dict[str, str]:
    """The kernel's environment inside the sandbox: its own HOME, tmp and caches; the relayed model URL."""
    out = {k: v for k, v in env.items() if not k.startswith(("XDG_", "JUPYTER_", "IPYTHONDIR", "VIRTUAL_ENV_PROMPT"))}
    out.update({"HOME": sandbox.HOME, "TMPDIR": "/tmp", "PERSONALAB_HOME": f"{sandbox.HOME}/.cache/personalab",
                "HF_HOME": f"{sandbox.HOME}/.cache/personalab/hf", "USER": "learner", "LOGNAME": "learner",
                "PERSONALAB_SANDBOX": "bwrap"})
    for key in ("PERSONALAB_RESULTS", "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_DATASETS_CACHE"):
        out.pop(key, None)
    if env.get("OPENAI_BASE_URL"):
        if relayed:
            out["OPENAI_BASE_URL"] = sandbox.sandbox_base_url(env["OPENAI_BASE_URL"])
        else:
            out.pop("OPENAI_BASE_URL")
    return out


def cell_label(cells: Sequence[Any], i: int) -> str:
    """How messages name a cell: 1-based, as a learner counts, with its first line of code."""
    src = cells[i].get("source", "") if 0 <= i < len(cells) else ""
    first = next((ln.strip() for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#")), "")
    first = first.replace("`", "'")
    snippet = first if len(first) <= 40 else first[:37] + "..."
    return f"cell {i + 1}" + (f" (`{snippet}`)" if snippet else "")


def defined_names(source: str) -> set[str]:
    """Names a cell's code binds at top level (assignments, defs, imports, for targets)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _explain_missing(values: dict[str, Any], nb: Any, cell_errors: list[dict[str, Any]]) -> str | None:
    """Say why a variable the question reads is missing: which cell should define it and what it raised."""
    missing = [k for k, v in values.items() if isinstance(v, dict) and set(v) == {"__missing__"}]
    if not missing:
        return None
    name = missing[0]
    if any(e["ename"] == "NotImplementedError" for e in cell_errors):
        return None  # an untouched exercise: the default "fill in the code" reason fits
    cells = [i for i, c in enumerate(nb.cells) if c.get("cell_type") == "code" and name in defined_names(c.source)]
    if not cells:
        return f"`{name}` is not defined and no cell of the notebook defines it (was that cell deleted?)"
    errors = {e["cell"]: e for e in cell_errors}
    failed = [i for i in cells if i in errors]
    if failed:
        e = errors[failed[0]]
        where = cell_label(nb.cells, failed[0])
        return f"`{name}` is not defined: {where}, which defines it, raised {e['ename']}: {e['evalue'][:150]}"
    return None


def _run_worker(tmpdir: Path, job: dict[str, Any], limit: float, cells: Sequence[Any], *, workdir: Path,
                isolation: Isolation) -> dict[str, Any]:
    """Run the worker (in the sandbox when asked) and return its status; kill everything it left behind."""
    pkg_root = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV and not _SECRET.search(k)}
    env["PYTHONPATH"] = job["env"]["PYTHONPATH"]
    group, oom = None, False
    if isolation.mode == "bwrap":
        readonly = sandbox.readonly_paths(Path(pkg_root), job["env"]["PYTHONPATH"].split(os.pathsep), config.home())
        hide = [isolation.grader_dir] if any(isolation.grader_dir.resolve().is_relative_to(Path(src))
                                             for src, _ in readonly) else []
        inner = [sys.executable, "-m", "personalab.grading", "--worker", f"{sandbox.JOB}/job.json"]
        cmd = sandbox.bwrap_command(inner, workdir=workdir, jobdir=tmpdir, relay_dir=isolation.relay_dir,
                                    readonly=readonly, hide=hide)
        group = sandbox.ResourceGroup.create(isolation.limits)
        cmd = (group.shell_prefix() if group else sandbox.rlimit_prefix(isolation.limits)) + cmd
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": job["env"]["PYTHONPATH"],
               "HOME": sandbox.HOME, "LANG": os.environ.get("LANG", "C.UTF-8"), "PYTHONDONTWRITEBYTECODE": "1"}
    else:
        cmd = [sys.executable, "-m", "personalab.grading", "--worker", str(tmpdir / "job.json")]
    kernel_pid = tmpdir / "kernel.pid"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        out = _communicate_bounded(proc, limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        if group is None:
            with contextlib.suppress(Exception):
                _kill_group(int(kernel_pid.read_text()))
        proc.wait()
        where = ""
        with contextlib.suppress(Exception):
            where = f" while running {cell_label(cells, int((tmpdir / 'progress').read_text()))}"
        return {"note": f"the notebook ran past the grading time limit ({limit:g} s){where} and was stopped"}
    finally:
        if group is not None:
            oom = group.oom_killed()
            group.remove()
        elif isolation.mode == "none":
            with contextlib.suppress(Exception):  # a kernel left behind by a crashed worker
                if proc.returncode is not None:
                    _kill_group(int(kernel_pid.read_text()))
    status_path = tmpdir / "status.json"
    status: dict[str, Any] | None = None
    with contextlib.suppress(Exception):
        status = json.loads(status_path.read_text(encoding="utf-8"))
        if not isinstance(status, dict):
            status = None
    if status is None:
        tail = out.decode("utf-8", "replace").strip().splitlines()[-3:] if out else []
        status = {"note": f"the grading worker failed (exit {proc.returncode}): {' / '.join(tail)[:300]}"}
    if group is not None and oom and "kernel died" in str(status.get("note")):
        limit_mb = isolation.limits.memory_mb
        status["note"] = str(status["note"]).replace("(it exited Python or ran out of memory)",
                                                     f"(it ran out of memory: the limit is {limit_mb} MB)")
    return status


def _communicate_bounded(proc: subprocess.Popen[bytes], limit: float, keep: int = 20_000) -> bytes:
    """Wait for ``proc`` at most ``limit`` seconds, keeping only the last ``keep`` bytes of its output."""
    tail = bytearray()

    def read() -> None:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(65536):
            tail.extend(chunk)
            del tail[:-keep]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=limit)
    finally:
        reader.join(timeout=5)
    return bytes(tail)


def _read_values(path: Path, nonce: str) -> dict[str, Any]:
    exported: dict[str, Any] = {}
    if not path.exists():
        return exported
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(Exception):
            rec = json.loads(line)
            if rec.get("nonce") == nonce and isinstance(rec.get("values"), dict):
                exported.setdefault(str(rec["question"]), rec["values"])
    return exported


# -------------------------------------------------------------------------------------- worker process


def _execute(nb: Any, job: dict[str, Any], n_sub: int) -> tuple[str | None, int | None, set[int]]:
    """Run ``nb`` in a fresh kernel. Returns (note, index of the cell that stopped the run, timed-out cells)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    def timeout_for(cell: Any) -> int:
        grader = "personalab-grader" in cell.metadata.get("tags", [])
        return int(job["grading_timeout"] if grader else job["cell_timeout"])

    timed_out: set[int] = set()
    executed: list[int] = []
    current = {"cell": -1}

    def on_cell_execute(cell: Any, cell_index: int) -> None:
        current["cell"] = cell_index
        executed.append(cell_index)
        with contextlib.suppress(OSError):
            Path(job["progress"]).write_text(str(cell_index))

    class StuckKernel(Exception):
        pass

    class Client(NotebookClient):
        async def async_start_new_kernel(self, **kwargs: Any) -> None:
            await super().async_start_new_kernel(**kwargs)
            pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
            if pid:
                Path(job["kernel_pid"]).write_text(str(pid))

        def output(self, outs: Any, msg: dict[str, Any], display_id: Any, cell_index: int) -> Any:
            # only errors matter to the grader: keeping nothing else bounds memory when a cell prints without end
            if msg.get("msg_type") != "error":
                return None
            return super().output(outs, msg, display_id, cell_index)

        async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> Any:
            if len(executed) > 1 and executed[-2] in timed_out:
                # the previous cell was interrupted but the kernel is still busy: it ignores interrupts
                raise StuckKernel(executed[-2])
            timed_out.add(current["cell"])
            return await super()._async_handle_timeout(timeout, cell)

    client = Client(nb, timeout=int(job["cell_timeout"]), timeout_func=timeout_for, allow_errors=True,
                    interrupt_on_timeout=True, error_on_timeout=_timeout_error(job), kernel_name="python3",
                    startup_timeout=KERNEL_STARTUP, resources={"metadata": {"path": job["cwd"]}}, iopub_timeout=10,
                    on_cell_execute=on_cell_execute, shutdown_kernel="immediate")
    try:
        client.execute(env=job["env"])
    except StuckKernel as exc:
        return (f"{cell_label(nb.cells, exc.args[0])} ran longer than {job['cell_timeout']:g} s and did not stop "
                "when interrupted, so the cells after it could not run"), exc.args[0], timed_out
    except DeadKernelError:
        where = cell_label(nb.cells, current["cell"]) if current["cell"] < n_sub else "the grading step"
        return (f"the kernel died while running {where} (it exited Python or ran out of memory)", current["cell"],
                timed_out)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return f"the notebook could not be run ({type(exc).__name__}: {first})", None, timed_out
    return None, None, timed_out


def _timeout_error(job: dict[str, Any]) -> dict[str, Any]:
    return {"ename": "CellTimeout", "evalue": f"the cell ran longer than {job['cell_timeout']:g} s and was "
            "interrupted", "traceback": []}


def _worker(job_path: str) -> int:
    """Execute one prepared notebook (in its own process group or sandbox) and write status.json.

    When a submission cell kills the kernel or ignores interrupts, the cells before it are run once more
    (with the grading cells) so that the questions answered before it keep their points."""
    import copy

    import nbformat

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    if job.get("relay"):
        sandbox.start_inner_relay(job["relay"]["base_url"], job["relay"]["socket"])
    nb = nbformat.read(job["notebook"], as_version=4)
    n_sub = sum(1 for c in nb.cells if "personalab-grader" not in c.metadata.get("tags", []))
    grader_cells = copy.deepcopy(nb.cells[n_sub:])
    note, fatal, timed_out = _execute(nb, job, n_sub)
    rerun_upto = None
    if fatal is not None and 0 < fatal < n_sub:
        before = nbformat.from_dict(copy.deepcopy(dict(nb)))
        before.cells = before.cells[:fatal] + grader_cells
        for cell in before.cells:
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
        note2, fatal2, _ = _execute(before, job, fatal)
        if fatal2 is None and note2 is None and not _grading_error(before.cells[fatal:]):
            rerun_upto = fatal
            note = (f"{note}; the questions answered before it were graded from a second run that stopped "
                    "before that cell")
    errors = []
    for i, cell in enumerate(nb.cells[:n_sub]):
        if i in timed_out:
            errors.append({"cell": i, "label": cell_label(nb.cells, i), "ename": "Timeout",
                           "evalue": _timeout_error(job)["evalue"]})
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append({"cell": i, "label": cell_label(nb.cells, i), "ename": out.get("ename", ""),
                               "evalue": str(out.get("evalue", ""))[:300]})
    if note is None:
        note = _grading_error(nb.cells[n_sub:])
    status = {"note": note, "cell_errors": errors, "rerun_upto": rerun_upto}
    Path(job["status"]).write_text(json.dumps(status), encoding="utf-8")
    return 0


def _grading_error(cells: Sequence[Any]) -> str | None:
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"the grading step failed ({out.get('ename')}: {str(out.get('evalue', ''))[:200]})"
    return None


# ------------------------------------------------------------------------------------------- gradebook


@contextlib.contextmanager
def model_server(enabled: bool) -> Iterator[dict[str, str | None]]:
    """Where kernels and checks find the model: ``OPENAI_BASE_URL`` if set (a workshop server, whose
    ``OPENAI_API_KEY`` is passed on), else a local server started for the grading run (``enabled``)."""
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    model = os.environ.get("PERSONALAB_MODEL") or None
    if base_url or not enabled:
        yield {"base_url": base_url, "model": model, "api_key": os.environ.get("OPENAI_API_KEY") if base_url else None}
        return
    try:
        from .server import LocalServer
    except ImportError:
        print("warning: personalab.server is not available: grading without a model server", file=sys.stderr)
        yield {"base_url": None, "model": None, "api_key": None}
        return
    with LocalServer() as server:
        saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "PERSONALAB_MODEL")}
        os.environ["OPENAI_BASE_URL"], os.environ["PERSONALAB_MODEL"] = server.base_url, server.model
        try:
            yield {"base_url": server.base_url, "model": server.model, "api_key": None}
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def grade_all(
    submissions: Sequence[Submission],
    *,
    jobs: int = 1,
    cell_timeout: float = DEFAULT_CELL_TIMEOUT,
    notebook_timeout: float | None = None,
    server: bool = True,
    progress: bool = True,
    isolation: Isolation | None = None,
) -> list[Report]:
    """Grade notebooks in parallel (``jobs`` at a time), in the order given."""
    isolation = isolation or Isolation()
    with model_server(server) as where, tempfile.TemporaryDirectory(prefix="personalab-relay-") as relay_tmp:
        relay_dir = Path(relay_tmp)
        os.chmod(relay_dir, 0o755)
        base_url = where["base_url"] if isolation.mode == "bwrap" else None
        with sandbox.relay(base_url, relay_dir) as relay:
            if relay is not None:
                isolation = dataclasses.replace(isolation, relay_dir=relay_dir)
            kw = {"cell_timeout": cell_timeout, "notebook_timeout": notebook_timeout, "isolation": isolation, **where}
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = [pool.submit(grade_one, s, **kw) for s in submissions]
                if progress:
                    from tqdm.auto import tqdm

                    for fut in tqdm(futures, desc="grading", unit="notebook"):
                        fut.result()
                return [f.result() for f in futures]


def gradebook_csv(reports: Sequence[Report], root: Path | None = None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for rep in reports:
        writer.writerows(rep.rows(root))
    return buf.getvalue()


def feedback_markdown(student: str, reports: Sequence[Report]) -> str:
    """The feedback file of one student: score, each question's verdict, and the cells that raised."""
    pts, top = sum(r.points for r in reports), sum(r.max_points for r in reports)
    lines = [f"# Feedback for {student}", "", f"**Total: {pts:g} / {top:g} points**", ""]
    for rep in reports:
        title = f"Exercise {rep.submission.exercise}" + (f": {rep.exercise_title}" if rep.exercise_title else "")
        lines += [f"## {title} ({rep.submission.path.name})", "", f"{rep.points:g} / {rep.max_points:g} points", "",
                  "| question | points | verdict |", "| --- | --- | --- |"]
        for r in rep.results:
            reason = r.reason.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r.question} | {r.points:g} / {r.max_points:g} | {r.status}: {reason} |")
        lines.append("")
        lines += [f"- Note: {n}" for n in rep.notes]
        if rep.cell_errors:
            lines += ["Cells that raised an error when the notebook was run top to bottom:", ""]
            for e in rep.cell_errors:
                label = e.get("label") or f"cell {e['cell'] + 1}"
                lines.append(f"- {label}: `{e['ename']}: {e['evalue'][:150]}`")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"


def write_outputs(reports: Sequence[Report], out: str | Path, *, root: Path | None = None,
                  feedback_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write the CSV gradebook and one Markdown feedback file per student (atomically). Returns both paths."""
    out = Path(out)
    atomic_write_text(out, gradebook_csv(reports, root))
    fb = Path(feedback_dir) if feedback_dir else out.parent / f"{out.stem}_feedback"
    by_student: dict[str, list[Report]] = {}
    for rep in reports:
        by_student.setdefault(rep.submission.student, []).append(rep)
    for student, reps in by_student.items():
        atomic_write_text(fb / f"{_slug(student)}.md", feedback_markdown(student, reps))
    return out, fb


def grade_folder(root: str | Path, out: str | Path, *, exercise: str | None = None, jobs: int = 1,
                 cell_timeout: float = DEFAULT_CELL_TIMEOUT, notebook_timeout: float | None = None,
                 server: bool = True, feedback_dir: str | Path | None = None, progress: bool = True,
                 isolation: Isolation | None = None) -> list[Report]:
    """Grade every notebook under ``root`` and write the gradebook ``out`` and the feedback files."""
    root = Path(root)
    subs = find_submissions(root, exercise=exercise)
    if not subs:
        raise InputError("no notebooks (*.ipynb) found", path=root,
                         fix="put one STUDENT.ipynb per student there, or one folder per student")
    reports = grade_all(subs, jobs=jobs, cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                        server=server, progress=progress, isolation=isolation)
    write_outputs(reports, out, root=root, feedback_dir=feedback_dir)
    return reports


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker(sys.argv[2]))
    print("usage: personalab grade SUBMISSIONS_DIR --out grades.csv", file=sys.stderr)
    sys.exit(2)
