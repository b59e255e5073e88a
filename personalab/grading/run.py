"""Grading one submission in the grader's process: prepare the notebook, run the worker (sandboxed or not),
read back the values the notebook exported and score them."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import config, sandbox
from ..checks import Exercise, Hidden, Result, load_exercise, module_name
from . import adapter as ex04_adapter
from .assets import SUITE_EXERCISES, Assets
from .gradebook import Report, all_zero
from .hidden import load_hidden
from .isolation import Isolation, kernel_env, sandbox_env, without_secrets
from .notebooks import cell_label, read_notebook
from .scoring import grade_questions, read_values
from .submissions import Submission, exercise_label, other_exercise
from .worker import KERNEL_STARTUP, prepare

#: Where the cell limits come from: the slowest cell of each exercise's model solution graded as a class on the CPU
#: base (SmolLM2-135M-Instruct, 2 cores, ``--jobs 2``, sandboxed; ``benchmarks/bench_grading.py`` reports it as
#: ``slowest_cell``), times a margin of 4. Measured 2026-12-05, 2 learners x exercises 01, 02, 03, 05 and 06 beside
#: other work (load average 5-8, so slower than a quiet grading run; benchmarks/RESULTS.md, "Grading a class on the
#: real base"): exercise 01's comparison cell 31.2 s, 02's latency table 38.6 s, 03 and 06 under 7 s. The default,
#: 160 s, is 4 x 38.6 s (rounded up) and covers 01-03, 05 and 06. In the 60-notebook class of 2026-12-05 (load 1-4)
#: the slowest cells were 01 65.8 s and 02 64.3 s (both under 160 s) and 05 8.4 s: exercise 05's notebooks now use
#: the grader's shared servers and its prepared replies and fluency readings (:mod:`personalab.grading.assets`), where
#: its agreement cell used to take 274 s reading the labelled sample in the kernel (then 1,200 s was its limit).
#: Since every sandbox asks the grader's one server (2026-12-05 12:13, 60 notebooks at load 2.1-2.5) the slowest
#: cells are 01 13.9 s, 02 18.2 s, 05 6.2 s: 160 s is now a margin of about 9 over the slowest, kept for a busier
#: machine (the load-5-8 run above was twice as slow).
DEFAULT_CELL_TIMEOUT = 160
GRADING_CELL_TIMEOUT = 300
#: Exercises whose model solution runs longer than the default in one cell: exercise 04 trains in the notebook
#: (about 3-4 min alone, slower beside another job); the grader skips that cell and measures the adapter instead,
#: and keeps 1,200 s for a learner's notebook that trains in another cell.
EXERCISE_CELL_TIMEOUT = {"04": 1200.0}
#: Exercises graded from a submitted adapter instead of a training run (see :mod:`personalab.grading.adapter`).
ADAPTER_EXERCISES = frozenset({"04"})
#: Wall-clock limit of the sandboxed process that loads one adapter and answers the sample.
ADAPTER_EVAL_TIMEOUT = 600.0


def cell_timeout_for(exercise: str | None, asked: float | None = None) -> float:
    """The cell limit for ``exercise``: the limit ``asked`` for (an instructor's explicit choice), else the default,
    raised to what the exercise's model solution needs."""
    if asked is not None:
        return asked
    return max(DEFAULT_CELL_TIMEOUT, EXERCISE_CELL_TIMEOUT.get(exercise or "", 0.0))


def grade_one(
    sub: Submission,
    *,
    cell_timeout: float | None = None,
    notebook_timeout: float | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    isolation: Isolation | None = None,
    assets: Assets | None = None,
    served: Sequence[str] = (),
) -> Report:
    """Grade one notebook. Never raises for anything the submission does: problems become reasons. ``assets``:
    what :func:`personalab.grading.assets.prepare` made ready for this run (exercise 05's model and replies);
    ``served``: the model folders the server at ``base_url`` serves (exercise 05's kernels use it for them)."""
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
        if served and sub.exercise in SUITE_EXERCISES:
            from ..backends import SERVED_ENV

            env[SERVED_ENV] = os.pathsep.join(served)
        report = _run_and_grade(sub, exercise, report, cell_timeout=cell_timeout_for(sub.exercise, cell_timeout),
                                notebook_timeout=notebook_timeout,
                                env=env, isolation=isolation, hidden=hidden, assets=assets)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one bad notebook never stops the gradebook
        report.results = all_zero(exercise, "error", f"grading failed ({type(exc).__name__}: {exc})")
    report.seconds = time.monotonic() - start
    return report


def _sandbox_paths(job: dict[str, Any], tmpdir: Path) -> dict[str, Any]:
    """The job with the grader's temporary paths replaced by where the sandbox mounts them."""
    def inside(value: str) -> str:
        return value.replace(str(tmpdir), sandbox.JOB)

    return {k: inside(v) if isinstance(v, str) else v for k, v in job.items()}


def _run_and_grade(sub: Submission, exercise: Exercise, report: Report, *, cell_timeout: float,
                   notebook_timeout: float | None, env: dict[str, str], isolation: Isolation | None = None,
                   hidden: dict[str, Hidden] | None = None, assets: Assets | None = None) -> Report:
    import nbformat

    isolation = isolation or Isolation()
    hidden = hidden or {}
    shared = assets if assets is not None and assets.ready and sub.exercise in SUITE_EXERCISES else None
    try:
        nb = read_notebook(sub.path)
    except Exception as exc:  # noqa: BLE001 - malformed JSON, empty file, not a notebook
        msg = str(exc).splitlines()[0][:240] if str(exc) else type(exc).__name__
        report.results = all_zero(exercise, "error", f"the notebook file could not be read ({msg})")
        return report
    other = other_exercise(nb, sub.exercise or "")
    if other is not None:
        reason = (f"this notebook is {exercise_label(other)}, not {exercise_label(sub.exercise or '')}: "
                  f"hand in the notebook of exercise {sub.exercise} (or grade this one with --exercise {other})")
        report.results = all_zero(exercise, "error", reason)
        return report
    original, skipped = nb, []
    if sub.exercise in ADAPTER_EXERCISES:  # graded from the saved adapter: the training cells never run
        nb, skipped = ex04_adapter.drop_training(nb)
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
            job["env"] = sandbox_env(env, relayed=isolation.relay_dir is not None)
            if isolation.relay_dir is not None and env.get("OPENAI_BASE_URL"):
                job["relay"] = {"base_url": job["env"]["OPENAI_BASE_URL"], "socket": f"{sandbox.RELAY_DIR}/model.sock"}
            # the base model at the grader's own path: the kernel's prompted side (backends.prompted_side) then names
            # the checkpoint the grader's server serves and asks it through the relay, instead of starting a server
            # of its own in the sandbox (which it did for exercises 01, 02 and 06: a model load and unbatched,
            # uncached replies in every notebook)
            job["env"]["PERSONALAB_MODELS"] = str(config.models_dir())
            if shared is not None:
                job["env"].update(shared_env(shared, tmpdir))
        prepared = prepare(nb, values_path=values_in_kernel, nonce=nonce, module=module_name(sub.exercise or ""),
                            hidden_path=hidden_in_kernel)
        (tmpdir / "submission.ipynb").write_text(nbformat.writes(prepared, version=4), encoding="utf-8")
        (tmpdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        status = _run_worker(tmpdir, job, limit, prepared.cells, workdir=workdir, isolation=isolation,
                             same_paths=_same_paths(env, shared) if sandboxed else ())
        report.cell_errors = status.get("cell_errors", [])
        report.slowest_cell = status.get("slowest_cell") if isinstance(status.get("slowest_cell"), dict) else None
        report.cell_seconds = [c for c in status.get("cell_seconds") or [] if isinstance(c, dict)]
        if status.get("note"):
            report.notes.append(status["note"])
        exported = read_values(values_path, nonce)
    report.results = grade_questions(exercise, exported, hidden, nb, status, report.cell_errors)
    report.cell_errors = _original_cells(report.cell_errors, original, skipped)  # numbered as the learner's cells
    if sub.exercise in ADAPTER_EXERCISES:
        my_config = exported.get("q1", {}).get("my_config")
        verdicts = _adapter_verdicts(sub, exercise, my_config if isinstance(my_config, dict) else None, isolation)
        report.results = [verdicts.get(r.question, r) for r in report.results]
        why = ex04_adapter.skipped_definition(original, skipped, "my_config")
        if why:
            report.results = [Result(r.question, 0.0, r.max_points, "error", why) if r.question == "q1" and
                              r.points < r.max_points else r for r in report.results]
    return report


def _same_paths(env: dict[str, str], shared: Assets | None) -> list[Path]:
    """Folders a sandbox mounts read-only at the grader's own paths: the base models, the checkpoint the grader's
    server serves (``PERSONALAB_MODEL``, when a folder) and exercise 05's prepared assets."""
    paths = [config.models_dir()]
    served = env.get("PERSONALAB_MODEL", "")
    if served and Path(served).is_dir():
        paths.append(Path(served))
    if shared is not None:
        paths += shared.readonly_paths()
    return list(dict.fromkeys(p.resolve() for p in paths))


def _original_cells(errors: list[dict[str, Any]], original: Any, skipped: list[int]) -> list[dict[str, Any]]:
    """Cell errors numbered as in the learner's notebook, not in the copy the grader ran without the skipped
    (training) code cells."""
    if not skipped:
        return errors
    ran = [i for i, c in enumerate(original.cells) if not (i in skipped and c.get("cell_type") == "code")]
    return [dict(e, cell=ran[e["cell"]]) if isinstance(e.get("cell"), int) and 0 <= e["cell"] < len(ran) else e
            for e in errors]


def _adapter_verdicts(sub: Submission, exercise: Exercise, my_config: dict[str, Any] | None,
                      isolation: Isolation) -> dict[str, Result]:
    """Exercise 04's questions 2-4 from the adapter next to the notebook: checked here, measured in its own
    sandboxed process (no learner code runs there), judged here (:mod:`personalab.grading.adapter`)."""
    from ..models import model_dir

    qs = [q for q in exercise.questions if q.id in ("q2", "q3", "q4")]

    def failed(reason: str, status: str = "error") -> dict[str, Result]:
        return {q.id: Result(q.id, 0.0, float(q.points), status, reason) for q in qs}

    base_dir = Path(model_dir(config.base_model())).resolve()
    folder = ex04_adapter.adapter_folder(sub.path)
    try:
        info = ex04_adapter.check_adapter(folder, base_dir)
    except ex04_adapter.AdapterProblem as exc:  # no folder at all: nothing handed in, so not attempted
        return failed(str(exc), "error" if folder.exists() else "not-attempted")
    prompts, train = ex04_adapter.sample()
    with tempfile.TemporaryDirectory(prefix="personalab-adapter-") as tmp, \
            tempfile.TemporaryDirectory(prefix="personalab-work-") as work:
        tmpdir = Path(tmp)
        (tmpdir / "adapter").mkdir()
        for name in (ex04_adapter.CONFIG_FILE, ex04_adapter.WEIGHTS_FILE):
            shutil.copyfile(ex04_adapter.adapter_folder(sub.path) / name, tmpdir / "adapter" / name)
        env = kernel_env()
        job: dict[str, Any] = {"base": str(base_dir), "adapter": str(tmpdir / "adapter"), "prompts": prompts,
                               "train": train, "out": str(tmpdir / "measured.json"), "threads": 1,
                               "status": str(tmpdir / "status.json"), "kernel_pid": str(tmpdir / "kernel.pid"),
                               "env": env}
        if isolation.mode == "bwrap":
            job = _sandbox_paths(job, tmpdir)
            job["env"] = sandbox_env(env, relayed=False)
        (tmpdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
        status = _run_worker(tmpdir, job, ADAPTER_EVAL_TIMEOUT, [], workdir=Path(work), isolation=isolation,
                             same_paths=[base_dir], flag="--adapter")
        measured: dict[str, Any] | None = None
        with contextlib.suppress(Exception):
            measured = json.loads((tmpdir / "measured.json").read_text(encoding="utf-8"))
    if not isinstance(measured, dict):
        return failed(f"the adapter could not be evaluated: {status.get('note') or 'no result'}")
    if measured.get("error"):
        return failed(str(measured["error"]))
    base, base_loss = ex04_adapter.base_reference(base_dir, prompts, train)
    return ex04_adapter.adapter_results(exercise, measured | {"base_loss": base_loss}, base, my_config, info)


def shared_env(assets: Assets, jobdir: Path) -> dict[str, str]:
    """The kernel's view of the grader's shared assets in a sandbox: copies of the 04/training record and of the
    reply cache in the job folder, the models at the grader's own paths."""
    from ..evaluate.fluency import PERPLEXITY_CACHE_ENV

    copied = assets.copy_into(jobdir)
    env = {"PERSONALAB_MODELS": str(config.models_dir())}
    if "results" in copied:
        env["PERSONALAB_RESULTS"] = str(copied["results"])
    if "cache" in copied:
        env["PERSONALAB_EVAL_CACHE"] = str(copied["cache"])
    if "perplexity" in copied:
        env[PERPLEXITY_CACHE_ENV] = str(copied["perplexity"])
    return _sandbox_paths(env, jobdir)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(pid, signal.SIGKILL)


def _run_worker(tmpdir: Path, job: dict[str, Any], limit: float, cells: Sequence[Any], *, workdir: Path,
                isolation: Isolation, same_paths: Sequence[Path] = (), flag: str = "--worker") -> dict[str, Any]:
    """Run the worker (in the sandbox when asked) and return its status; kill everything it left behind."""
    env = without_secrets(os.environ)
    env["PYTHONPATH"] = job["env"]["PYTHONPATH"]
    group, oom = None, False
    if isolation.mode == "bwrap":
        readonly = sandbox.readonly_paths(config.REPO_ROOT, job["env"]["PYTHONPATH"].split(os.pathsep), config.home())
        readonly += [(str(p.resolve()), str(p.resolve())) for p in same_paths if p.exists()]
        hide = [isolation.grader_dir] if any(isolation.grader_dir.resolve().is_relative_to(Path(src))
                                             for src, _ in readonly) else []
        inner = [sys.executable, "-m", "personalab.grading", flag, f"{sandbox.JOB}/job.json"]
        cmd = sandbox.bwrap_command(inner, workdir=workdir, jobdir=tmpdir, relay_dir=isolation.relay_dir,
                                    readonly=readonly, hide=hide)
        group = sandbox.ResourceGroup.create(isolation.limits)
        cmd = (group.shell_prefix() if group else sandbox.rlimit_prefix(isolation.limits)) + cmd
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": job["env"]["PYTHONPATH"],
               "HOME": sandbox.HOME, "LANG": os.environ.get("LANG", "C.UTF-8"), "PYTHONDONTWRITEBYTECODE": "1"}
    else:
        cmd = [sys.executable, "-m", "personalab.grading", flag, str(tmpdir / "job.json")]
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
        return {"note": f"the notebook ran past the grading time limit ({limit:g} s){where} and was stopped",
                "timed_out": True}
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
