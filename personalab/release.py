"""The student release: what a class receives, without anything only the grader should have.

``personalab release OUT_DIR`` copies the lessons, the exercises, the data and the package, and leaves
out ``solutions/``, ``notebooks_src/`` (the solutions' sources), ``grader/`` (the hidden cases),
``tests/``, ``benchmarks/`` and the instructors' guide. ``q1.solution()`` shows the solution regions of
``solutions/``, so without that folder it says that model solutions are not part of the release (hints
stay); ``--with-solutions`` ships ``solutions/`` too. :func:`leaks` then verifies the result: no solution
region of any solution notebook (outside a shipped ``solutions/``), and none of the grader's files,
appears anywhere in it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .config import REPO_ROOT
from .errors import InputError

#: top-level entries of the repository that a class receives
INCLUDED = ("README.md", "GLOSSARY.md", "pyproject.toml", "constraints.txt", "environment.yml", "dev.py", ".gitignore",
            "lessons", "exercises", "data", "personalab")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")
MIN_LEAK_CHARS = 24  # solution lines shorter than this are too generic to call a leak (e.g. "return None")


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
        for name in INCLUDED + (("solutions",) if solutions else ()):
            src = repo_root / name
            if src.is_dir():
                shutil.copytree(src, tmp / name, ignore=IGNORED)
            elif src.is_file():
                shutil.copy2(src, tmp / name)
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

    from .authoring.regions import find_regions

    lines = {line.strip() for path in sorted((repo_root / "solutions").glob("*.ipynb"))
             for cell in nbformat.read(path, as_version=4).cells for region in find_regions(cell.source)
             for line in region.text.splitlines() if len(line.strip()) >= MIN_LEAK_CHARS}
    public = [p.read_text(encoding="utf-8", errors="replace") for name in ("lessons", "exercises", "data")
              for p in sorted((repo_root / name).rglob("*")) if p.is_file()]
    # hints and messages of the checks stay in the release on purpose (what they give away is the author's choice)
    public += [p.read_text(encoding="utf-8") for p in sorted((repo_root / "personalab" / "checks").glob("*.py"))]
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
    """Grader material found in a release folder: solution lines, grader files, solution folders
    (``solutions/`` is allowed, and not searched, when the release ships the solutions)."""
    shipped = ("solutions",) if solutions else ()
    found = [f"{name}/ is in the release" for name in ("solutions", "notebooks_src", "grader", "tests")
             if (out / name).exists() and name not in shipped]
    secret = _solution_lines(repo_root)
    grader_lines = _hidden_strings(repo_root / "grader")
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".py", ".ipynb", ".md", ".json",
                                                                                     ".yaml", ".yml", ".txt")):
        if path.relative_to(out).parts[0] in shipped:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        # solution lines are looked for where a solution could slip in: the notebooks; generic code lines of a
        # solution (``if not isinstance(m, dict):``) legitimately occur in the package
        hit = (next((s for s in secret if s in text), None) if path.suffix == ".ipynb" else None) \
            or next((s for s in grader_lines if s in text), None)
        if hit:
            found.append(f"{path.relative_to(out)} contains {hit[:60]!r}")
    return found
