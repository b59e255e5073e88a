"""Repository-wide checks: no API keys in notebooks, pins consistent, notebooks generated and uniform."""

import json
import re
from pathlib import Path

import pytest
import tomllib
import yaml

from personalab import notebooks
from personalab.config import REPO_ROOT

KEY = re.compile(r"sk-(?:proj-)?[A-Za-z0-9_-]{20,}")


def _all_notebooks() -> list[Path]:
    return sorted(p for p in REPO_ROOT.rglob("*.ipynb") if ".venv" not in p.parts and "build" not in p.parts[-3:-1])


def test_no_notebook_contains_an_api_key():
    for path in _all_notebooks():
        assert not KEY.search(path.read_text(encoding="utf-8")), f"{path} contains something that looks like an API key"


def test_key_pattern_would_catch_a_key():
    assert KEY.search('"text": "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz123"')


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.replace("python", "").lstrip("=<>") and project["requires-python"]
    pins = {re.split(r"[\[=]", p)[0].lower(): p for p in project["dependencies"]}
    env_pins = {re.split(r"[\[=]", p)[0].lower(): p for p in pip_section if not p.startswith("-")}
    assert env_pins.pop("torch") == pins.pop("torch")
    assert env_pins == pins, "environment.yml pip section must list exactly pyproject's dependencies"
    assert "-e ." in pip_section, "environment.yml must install this package"


def test_constraints_agree_with_pins():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    constraints = dict(
        line.split("==", 1)
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    constraints = {k.lower(): v for k, v in constraints.items()}
    deps = project["dependencies"] + project["optional-dependencies"]["dev"]
    for dep in deps:
        name, version = re.split(r"==", dep)
        name = name.split("[")[0].lower()
        assert constraints.get(name, "").split("+")[0] == version, f"constraints.txt disagrees on {name}"


def test_generated_notebooks_are_up_to_date():
    assert notebooks.stale() == [], "run `personalab notebooks build`"


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
