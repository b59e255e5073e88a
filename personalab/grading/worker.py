"""The worker process (``python -m personalab.grading --worker JOB``) that runs one prepared notebook, in the
sandbox when grading is sandboxed, and the two cells appended to the notebook it runs.

It runs inside bubblewrap: keep its imports few (nbformat and nbclient are imported where they are used).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import sandbox
from .notebooks import cell_label

KERNEL_STARTUP = 60


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


def prepare(nb: Any, *, values_path: str, nonce: str, module: str, hidden_path: str | None = None) -> Any:
    """The submission with outputs dropped and the two grading cells appended."""
    import nbformat

    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.cells.append(nbformat.v4.new_code_cell(RESET_CELL, metadata={"tags": ["personalab-grader"]}))
    export = EXPORT_CELL.format(path=values_path, nonce=nonce, module=module, hidden=hidden_path)
    nb.cells.append(nbformat.v4.new_code_cell(export, metadata={"tags": ["personalab-grader"]}))
    return nb


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


def work(job_path: str) -> int:
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
    stuck = fatal is not None and fatal in timed_out  # a cell that ignored the interrupt stopped the run
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
                           "evalue": _timeout_error(job)["evalue"], "limit_s": float(job["cell_timeout"])})
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append({"cell": i, "label": cell_label(nb.cells, i), "ename": out.get("ename", ""),
                               "evalue": str(out.get("evalue", ""))[:300]})
    if note is None:
        note = _grading_error(nb.cells[n_sub:])
    status = {"note": note, "cell_errors": errors, "rerun_upto": rerun_upto, "timed_out": stuck,
              "slowest_cell": _slowest_cell(nb.cells[:n_sub]), "cell_seconds": cell_seconds(nb.cells[:n_sub])}
    Path(job["status"]).write_text(json.dumps(status), encoding="utf-8")
    return 0


def cell_seconds(cells: Sequence[Any]) -> list[dict[str, Any]]:
    """How long each submission cell ran ([{"label", "seconds"}], cells that never ran left out), from nbclient's
    timing metadata: where a notebook's grading time goes."""
    from datetime import datetime

    out: list[dict[str, Any]] = []
    for i, cell in enumerate(cells):
        timing = cell.get("metadata", {}).get("execution")
        if not isinstance(timing, dict):
            continue
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if not (isinstance(start, str) and isinstance(end, str)):  # the cell never ran (or its timing is lost)
            continue
        with contextlib.suppress(TypeError, ValueError):
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00")) -
                       datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            out.append({"label": cell_label(cells, i), "seconds": round(seconds, 1)})
    return out


def _slowest_cell(cells: Sequence[Any]) -> dict[str, Any] | None:
    """The submission cell that ran longest ({"label", "seconds"}): what the per-exercise cell limits are calibrated
    on (``personalab.grading.run.EXERCISE_CELL_TIMEOUT``)."""
    return max(cell_seconds(cells), key=lambda c: c["seconds"], default=None)


def _grading_error(cells: Sequence[Any]) -> str | None:
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"the grading step failed ({out.get('ename')}: {str(out.get('evalue', ''))[:200]})"
    return None


def main(argv: Sequence[str]) -> int:
    """``--worker JOB``: run the job at ``JOB`` (the grader starts this; see :func:`personalab.grading.grade_one`)."""
    if len(argv) == 2 and argv[0] == "--worker":
        return work(argv[1])
    if len(argv) == 2 and argv[0] == "--adapter":  # exercise 04: measure a submitted adapter (no learner code)
        from .adapter import work as adapter_work

        return adapter_work(argv[1])
    print("usage: personalab grade SUBMISSIONS_DIR --out grades.csv", file=sys.stderr)
    return 2
