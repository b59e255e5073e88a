"""The student release: what a class receives, without anything only the grader should have.

``personalab release OUT_DIR`` copies the lessons, the exercises, the data and the package, and leaves
out ``solutions/``, ``notebooks_src/`` (the solutions' sources), ``grader/`` (the hidden cases),
``tests/``, ``benchmarks/`` and the instructors' guide. Unless ``--with-solutions`` is given, the model
solutions that ``q1.solution()`` shows are blanked in the copied checks modules and switched off
(``personalab/release.json``); hints stay. :func:`leaks` then verifies the result: no solution region of
any solution notebook, and none of the grader's files, appears anywhere in it.
"""

from __future__ import annotations

import ast
import functools
import json
import shutil
import tempfile
from pathlib import Path

from .config import REPO_ROOT
from .errors import InputError
from .io import atomic_write_text

RELEASE_FILE = Path(__file__).resolve().parent / "release.json"
#: top-level entries of the repository that a class receives
INCLUDED = ("README.md", "pyproject.toml", "constraints.txt", "environment.yml", "dev.py", ".gitignore",
            "lessons", "exercises", "data", "personalab")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "release.json", "*.egg-info")
MIN_LEAK_CHARS = 24  # solution lines shorter than this are too generic to call a leak (e.g. "return None")


@functools.lru_cache(maxsize=1)
def _release_settings() -> dict[str, object]:
    try:
        data = json.loads(RELEASE_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def solutions_enabled() -> bool:
    """Whether ``q.solution()`` shows model solutions (True in the instructor's repository)."""
    return bool(_release_settings().get("solutions", True))


def blank_solutions(source: str) -> str:
    """A checks module's source with every ``solution=...`` keyword argument's value replaced by ``""``, and
    the module-level constants only those values use (e.g. an example persona) blanked too."""
    tree = ast.parse(source)
    data = source.encode("utf-8")
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def span(node: ast.expr) -> tuple[int, int]:
        return starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + (node.end_col_offset or 0)  # type: ignore[operator]

    values = [n.value for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "solution"]
    inside = {id(x) for v in values for x in ast.walk(v)}
    used_in_solutions = {x.id for v in values for x in ast.walk(v) if isinstance(x, ast.Name)}
    used_elsewhere = {x.id for x in ast.walk(tree)
                      if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Load) and id(x) not in inside}
    spans = [span(v) for v in values]
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name in used_in_solutions and name not in used_elsewhere:
                spans.append(span(stmt.value))
    for a, b in sorted(spans, reverse=True):
        data = data[:a] + b'""' + data[b:]
    return data.decode("utf-8")


def build(out_dir: str | Path, *, solutions: bool = False, repo_root: Path = REPO_ROOT) -> Path:
    """Write the student release into ``out_dir`` (which must not exist yet, or be empty). Returns it."""
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("the release folder already exists and is not empty", path=out,
                         fix="pass a new folder (the release is written from scratch)")
    if out.resolve().is_relative_to(repo_root.resolve()):
        raise InputError("the release folder is inside the repository", path=out,
                         fix="write it outside, e.g. ../persona-lab-class")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))  # renamed into place when complete
    try:
        for name in INCLUDED:
            src = repo_root / name
            if src.is_dir():
                shutil.copytree(src, tmp / name, ignore=IGNORED)
            elif src.is_file():
                shutil.copy2(src, tmp / name)
        if not solutions:
            for path in sorted((tmp / "personalab" / "checks").glob("*.py")):
                path.write_text(blank_solutions(path.read_text(encoding="utf-8")), encoding="utf-8")
        atomic_write_text(tmp / "personalab" / "release.json", json.dumps({"solutions": solutions}, indent=1) + "\n")
        found = leaks(tmp, repo_root=repo_root, solutions=solutions)
        if found:
            raise InputError(f"the release would leak grader material: {found[0]}", path=out,
                             fix="move that material out of the released folders (e.g. into grader/)")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _solution_lines(repo_root: Path) -> set[str]:
    """Distinctive lines of the solution regions of the solution notebooks that the learners' material
    (lessons, exercises, data, the checks' hints and messages) does not already contain."""
    import nbformat

    from .authoring.regions import BEGIN, END

    lines: set[str] = set()
    for path in sorted((repo_root / "solutions").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                marker = line.strip()
                if marker in (BEGIN, END):
                    inside = marker == BEGIN
                elif inside and len(marker) >= MIN_LEAK_CHARS:
                    lines.add(marker)
    public = [p.read_text(encoding="utf-8", errors="replace") for name in ("lessons", "exercises", "data")
              for p in sorted((repo_root / name).rglob("*")) if p.is_file()]
    # hints and messages of the checks stay in the release on purpose (what they give away is the author's choice)
    public += [blank_solutions(p.read_text(encoding="utf-8"))
               for p in sorted((repo_root / "personalab" / "checks").glob("*.py"))]
    text = "\n".join(public)
    return {line for line in lines if line not in text}


def _hidden_strings(grader_dir: Path) -> set[str]:
    """The distinctive strings of the grader's hidden inputs (what must never reach a learner)."""
    from .grading import load_hidden

    def leaves(value: object) -> list[str]:
        if isinstance(value, str):
            return [value] if len(value) >= MIN_LEAK_CHARS else []
        if isinstance(value, dict):
            return [s for v in value.values() for s in leaves(v)]
        if isinstance(value, (list, tuple)):
            return [s for v in value for s in leaves(v)]
        return []

    out: set[str] = set()
    for path in sorted(grader_dir.glob("ex[0-9][0-9].py")):
        for hidden in load_hidden(path.stem[2:], grader_dir).values():
            out.update(leaves(hidden.inputs))
    return out


def leaks(out: Path, *, repo_root: Path = REPO_ROOT, solutions: bool = False) -> list[str]:
    """Grader material found in a release folder: solution lines, grader files, solution folders."""
    found = [f"{name}/ is in the release" for name in ("solutions", "notebooks_src", "grader", "tests")
             if (out / name).exists()]
    secret = _solution_lines(repo_root)
    grader_lines = _hidden_strings(repo_root / "grader")
    checks = out / "personalab" / "checks"
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".py", ".ipynb", ".md", ".json",
                                                                                     ".yaml", ".yml", ".txt")):
        if solutions and path.parent == checks:
            continue  # the instructor chose to ship the solution texts
        text = path.read_text(encoding="utf-8", errors="replace")
        # solution lines are looked for where a solution could slip in: notebooks and the checks; generic code
        # lines of a solution (``if not isinstance(m, dict):``) legitimately occur in the package
        where_solutions = path.suffix == ".ipynb" or path.parent == checks
        hit = (next((s for s in secret if s in text), None) if where_solutions else None) \
            or next((s for s in grader_lines if s in text), None)
        if hit:
            found.append(f"{path.relative_to(out)} contains {hit[:60]!r}")
    return found
