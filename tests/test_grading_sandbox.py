"""Hostile submissions graded in the bubblewrap sandbox: marks, nothing outside changed, no process survives.

One graded corpus per session (the fake exercise, no model): every test reads the same reports.
CI installs bubblewrap (``apt-get install bubblewrap``) and sets PERSONALAB_REQUIRE_SANDBOX=1 so that a
missing sandbox fails instead of skipping.
"""

from __future__ import annotations

import copy
import os
import socket
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from personalab import grading, sandbox

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent
MARK = "9876"  # sleep arguments of the processes the submissions start: 98765N seconds


def _hostile_cells(canary: Path, home_canary: Path, port: int) -> dict[str, str]:
    grader = FIXTURES / "pl_fake_grader" / "ex99.py"
    solution = REPO / "solutions" / "01_system_prompt_persona.ipynb"
    return {
        # copies the solution out of the installed package's repository, reads the grader's hidden inputs
        "steal": f"""
import ast, pathlib
answer = 42 if pathlib.Path({str(solution)!r}).exists() else 0
try:
    hidden = ast.literal_eval(pathlib.Path({str(grader)!r}).read_text().split("INPUTS = ")[1].splitlines()[0])
except OSError:
    hidden = []
table = {{3: 6, -1.5: -3.0, **{{x: 2 * x for x in hidden}}}}
def double(x):
    return table.get(x)
""",
        # deletes HOME, the grader's real HOME canary and a file outside the sandbox
        "vandal": f"""
import os, pathlib, shutil
shutil.rmtree(pathlib.Path.home(), ignore_errors=True)
for p in ({str(home_canary)!r}, {str(canary)!r}):
    try:
        os.remove(p)
    except OSError as exc:
        print("could not delete", p, exc)
""",
        # the grader's loopback and the internet
        "network": f"""
import socket
for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 80)):
    try:
        socket.create_connection((host, port), timeout=2).sendall(b"pwned")
    except OSError as exc:
        print("no network:", exc)
""",
        # processes that outlive their parent: a new session and a double-forked daemon
        "orphans": """
import os, subprocess, time
subprocess.Popen(["sleep", "987651"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "987652"])
    os._exit(0)
time.sleep(0.5)
""",
        # forks until the process limit stops it; every child stays behind
        "forkbomb": """
import subprocess, sys
code = ("import os\\nn = 0\\nwhile True:\\n    try:\\n        pid = os.fork()\\n    except OSError:\\n"
        "        break\\n    if pid == 0:\\n        os.execvp('sleep', ['sleep', '987653'])\\n    n += 1\\nprint(n)")
forks = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout or 0)
print("forks before the limit:", forks)
""",
        "bigoutput": """
import sys
for _ in range(50):
    sys.stdout.write("x" * 1_000_000)
sys.stdout.buffer.write(b"\\xff\\xfe not utf-8\\n")
""",
        "memory": """
hog = bytearray(3 * 1024**3)
""",
    }


def _notebook(extra: str | None, after: int = 3, *, drop_answers: bool = False) -> str:
    from pl_fake import notebooks

    nb = copy.deepcopy(notebooks.solution())
    if drop_answers:  # the learner's own answer and function, replaced by stolen ones
        nb.cells = [c for c in nb.cells if "answer = 42" not in c.source and "def double" not in c.source]
    if extra is not None:
        nb.cells.insert(after, nbformat.v4.new_code_cell(extra))
    return nbformat.writes(nb)


class _Listener:
    """A TCP server on the grader's loopback that records whether anything reached it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.received.append(conn.recv(100))
            conn.close()


def _survivors() -> list[str]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if f"sleep {MARK}" in cmd:
                out.append(f"{d.name}: {cmd}")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    why = sandbox.probe()
    if why is not None:
        if os.environ.get("PERSONALAB_REQUIRE_SANDBOX") == "1":
            pytest.fail(f"the grading sandbox is required here but unavailable: {why}")
        pytest.skip(f"no grading sandbox here: {why}")
    root = tmp_path_factory.mktemp("hostile")
    home = root / "grader-home"
    home.mkdir()
    home_canary, canary = home / "precious.txt", root / "outside.txt"
    home_canary.write_text("keep me")
    canary.write_text("keep me too")
    listener = _Listener()
    sys.path.insert(0, str(FIXTURES))
    subs = root / "subs"
    subs.mkdir()
    for name, cell in _hostile_cells(canary, home_canary, listener.port).items():
        after = 2 if name == "steal" else 5 if name == "memory" else 8
        nb = _notebook(cell, after, drop_answers=name == "steal")
        (subs / f"{name}.ipynb").write_text(nb)
    (subs / "latin1.ipynb").write_bytes(_notebook("# caf\u00e9 cr\u00e8me").encode("latin-1"))
    ex03 = nbformat.read(REPO / "exercises" / "03_persona_dataset.ipynb", as_version=4)
    (subs / "wrong_exercise.ipynb").write_text(nbformat.writes(ex03))
    saved = {k: os.environ.get(k) for k in ("HOME", "PYTHONPATH")}
    os.environ["HOME"] = str(home)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")])
    try:
        isolation = grading.Isolation("bwrap", sandbox.Limits(memory_mb=1024, processes=64),
                                      grader_dir=FIXTURES / "pl_fake_grader")
        reports = grading.grade_folder(subs, root / "grades.csv", exercise="pl_fake.ex99", jobs=2, cell_timeout=20,
                                       server=False, progress=False, isolation=isolation)
    finally:
        sys.path.remove(str(FIXTURES))
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    by = {r.submission.student: r for r in reports}
    return {"by": by, "home_canary": home_canary, "canary": canary, "listener": listener, "home": home}


def marks(report: grading.Report) -> dict[str, tuple[float, str]]:
    return {r.question: (r.points, r.status) for r in report.results}


FULL = {"q1": (1.0, "correct"), "q2": (2.0, "correct"), "q3": (1.0, "correct")}


def test_no_solutions_or_hidden_cases_inside(corpus):
    got = marks(corpus["by"]["steal"])
    assert got["q1"] == (0.0, "incorrect")  # solutions/ is not there
    assert got["q3"] == (0.0, "incorrect")  # the lookup table passes the public cases, not the hidden ones
    assert "hidden cases" in corpus["by"]["steal"].results[2].reason


def test_files_outside_the_sandbox_survive(corpus):
    assert marks(corpus["by"]["vandal"]) == FULL
    assert corpus["home_canary"].read_text() == "keep me" and corpus["canary"].read_text() == "keep me too"


def test_no_network(corpus):
    assert marks(corpus["by"]["network"]) == FULL
    assert corpus["listener"].received == []


def test_no_process_survives(corpus):
    for name in ("orphans", "forkbomb"):
        assert marks(corpus["by"][name]) == FULL, name
    assert _survivors() == []


def test_big_output_and_bad_bytes(corpus):
    assert marks(corpus["by"]["bigoutput"]) == FULL
    assert marks(corpus["by"]["latin1"]) == FULL


def test_memory_limit_keeps_earlier_points(corpus):
    rep = corpus["by"]["memory"]
    got = marks(rep)
    assert got["q1"] == (1.0, "correct")
    said = " ".join(rep.notes) + " ".join(e["ename"] for e in rep.cell_errors)
    assert "out of memory" in said or "MemoryError" in said


def test_wrong_exercise_names_both(corpus):
    reason = corpus["by"]["wrong_exercise"].results[0].reason
    assert "exercise 03" in reason and "Fake exercise for tests" in reason
