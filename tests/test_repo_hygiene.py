"""Repository-wide checks: no API keys in notebooks, pins consistent, notebooks generated and uniform."""

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from personalab import authoring
from personalab.config import REPO_ROOT

KEY = re.compile(r"sk-(?:proj-)?[A-Za-z0-9_-]{20,}")


def _all_notebooks() -> list[Path]:
    return sorted(p for p in REPO_ROOT.rglob("*.ipynb") if ".venv" not in p.parts and "build" not in p.parts[-3:-1])


def test_no_notebook_contains_an_api_key():
    for path in _all_notebooks():
        assert not KEY.search(path.read_text(encoding="utf-8")), f"{path} contains something that looks like an API key"


def test_key_pattern_would_catch_a_key():
    assert KEY.search('"text": "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz123"')


def _lock() -> dict[str, tuple[str, str]]:
    """constraints.txt as {name: (version, marker)} for the lines that apply to this interpreter."""
    from packaging.markers import Marker

    out = {}
    for raw in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req, _, marker = line.partition(";")
        name, version = (x.strip() for x in req.split("=="))
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        out[name.lower().replace("_", "-")] = (version, raw)
    return out


def test_environment_yml_defers_to_the_lock():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.split("=")[-1] in ("3.11", "3.12", "3.13")
    assert not any(isinstance(d, dict) for d in env["dependencies"]), "packages come from constraints.txt via dev.py"


def test_lock_satisfies_every_direct_dependency():
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lock = _lock()
    for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(dep)
        name = req.name.lower().replace("_", "-")
        assert name in lock, f"constraints.txt lacks {name}: run `python3 dev.py lock`"
        assert req.specifier.contains(lock[name][0].split("+")[0], prereleases=True), (
            f"constraints.txt pins {name}=={lock[name][0]}, outside pyproject's {req.specifier}"
        )


def test_lock_is_complete_and_installed():
    """Every locked package is installed at its version, and every requirement of an installed locked package is
    itself locked (so `pip install --no-deps -r constraints.txt` needs no resolver)."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    lock = _lock()
    no_deps = {name for name, (_, raw) in lock.items() if "# no-deps" in raw}
    for name, (version, _) in lock.items():
        if re.match(r"(triton|nvidia-|cuda-)", name):
            continue  # CUDA parts: installed only beside a CUDA build of torch
        assert md.version(name).split("+")[0] == version, f"{name}: installed {md.version(name)}, locked {version}"
        if name in no_deps:
            continue
        for spec in md.requires(name) or []:
            req = Requirement(spec)
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue
            dep = req.name.lower().replace("_", "-")
            if dep in ("triton",) or dep.startswith(("nvidia-", "cuda-")):
                continue
            assert dep in lock, f"{name} requires {dep}, which constraints.txt does not lock"


def test_generated_notebooks_are_up_to_date():
    assert authoring.stale() == [], "run `personalab notebooks build`"


@pytest.mark.parametrize(
    "path",
    [p for p in _all_notebooks() if "fixtures" not in p.parts],  # tests/fixtures: deliberately broken submissions
    ids=lambda p: str(p.relative_to(REPO_ROOT)),
)
def test_every_notebook_has_badge_setup_and_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    first, setup = nb["cells"][0], nb["cells"][1]
    assert "colab-badge.svg" in "".join(first["source"])
    assert path.parent.name in "".join(first["source"]), "badge must point at this notebook's folder"
    assert "personalab.notebook import setup" in "".join(setup["source"])
    assert "%%capture" not in json.dumps(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: committed notebooks carry no outputs"
