"""The cost explorer and the persona arena in a Colab-like frontend: classic Notebook 6.5.7 with ipywidgets 7.7.1,
in Chromium.

Colab runs ipywidgets 7 in a classic-notebook frontend. The environment is a separate cached venv built by
``tests/ipywidgets7_env.py`` (exact pins, ``pip install --no-deps``); the first run installs it (about a minute
with a warm pip cache), later runs reuse it.
"""

from __future__ import annotations

import json
from pathlib import Path

import ipywidgets7_env
import pytest
from browser_helpers import browser, jupyter_server, screenshot, wait_for
from test_browser import arena_notebook, expected, use_arena

from personalab import widgets

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT_SEL = ".personalab-cost-explorer"


def classic_notebook(path: Path, source: str) -> None:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path.write_text(
        json.dumps({"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5})
    )


def run_all_classic(b, server: str, name: str, shot: str):
    """Open ``name`` in the classic Notebook, wait for its kernel, and run every cell (Cell > Run All, as a person
    would). Returns the page."""
    url, token = server.split("|")
    page = b.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/notebooks/{name}?token={token}", wait_until="domcontentloaded")
    wait_for(lambda: page.locator("#kernel_indicator_icon.kernel_idle_icon").count() == 1, 90,
             "the classic notebook's kernel", page, shot)
    page.click("#celllink")
    page.click("#run_all_cells")
    return page


def test_cost_explorer_in_classic_notebook_with_ipywidgets_7(tmp_path: Path) -> None:
    python = ipywidgets7_env.ensure()
    classic_notebook(
        tmp_path / "explore.ipynb",
        "import ipywidgets\nfrom personalab import widgets\nprint('ipywidgets', ipywidgets.__version__)\n"
        "widgets.explorer()",
    )
    with jupyter_server(tmp_path, app="notebook", python=str(python)) as server, browser() as b:
        page = run_all_classic(b, server, "explore.ipynb", "classic-kernel")
        page.wait_for_selector(f"{ROOT_SEL} .personalab-plot img", timeout=60_000)
        page.wait_for_timeout(3000)
        screenshot(page, "classic-explorer-initial")
        assert "ipywidgets 7.7.1" in page.inner_text(".output_area"), "not the ipywidgets-7 frontend"
        assert page.locator(".output_error").count() == 0, page.inner_text(".output_area")

        boxes = page.locator(f"{ROOT_SEL} .personalab-number input")
        values = {"requests_per_month": 500_000.0, "persona_tokens": 500.0}
        assert float(boxes.nth(0).input_value()) == 500_000  # not the log slider's 501,187
        check(page, values, "classic-initial-mismatch")

        boxes.nth(0).click(click_count=3)
        boxes.nth(0).type("20000000")
        boxes.nth(0).press("Enter")
        values["requests_per_month"] = 20_000_000
        check(page, values, "classic-volume-mismatch")

        handle = page.locator(f"{ROOT_SEL} .personalab-slider").nth(1).locator(".ui-slider-handle").first
        handle.focus()
        for _ in range(2):
            handle.press("ArrowRight")
        wait_for(
            lambda: float(boxes.nth(1).input_value()) == 520,  # two steps of 10 from 500
            30,
            "the persona box to follow its slider to 520",
            page,
            "classic-persona",
        )
        values["persona_tokens"] = 520.0
        check(page, values, "classic-persona-mismatch")
        screenshot(page, "classic-explorer-after")
        assert page.locator(".output_error").count() == 0


def check(page, values: dict[str, float], shot: str) -> None:
    want_dollars, want_alt, want_src = expected(values)
    img = page.locator(f"{ROOT_SEL} .personalab-plot img")

    def matches() -> bool:
        from browser_helpers import dollars

        summary = page.inner_text(f"{ROOT_SEL} .personalab-summary")
        return (dollars(summary), img.get_attribute("alt"), img.get_attribute("src")) == (
            want_dollars,
            want_alt,
            want_src,
        )

    wait_for(matches, 30, f"the explorer to show widgets.update({values})", page, shot)
    assert widgets.plot_alt(widgets.update(values)) == img.get_attribute("alt")


#: The classic environment holds the frontend's packages, not the course's model stack: ``openai`` is a stub (the
#: arena's fake targets never call it). What is tested is the arena's widgets under ipywidgets 7.
CLASSIC_PRELUDE = "import sys, types\nsys.modules.setdefault('openai', types.ModuleType('openai'))\n"


def test_persona_arena_in_classic_notebook_with_ipywidgets_7(tmp_path: Path) -> None:
    python = ipywidgets7_env.ensure()
    mine = arena_notebook(tmp_path, prelude=CLASSIC_PRELUDE)
    with jupyter_server(tmp_path, app="notebook", python=str(python)) as server, browser() as b:
        page = run_all_classic(b, server, "arena.ipynb", "classic-arena-kernel")
        use_arena(page, tmp_path, mine, "classic-arena")
        assert "ipywidgets 7.7.1" in page.inner_text(".output_area"), "not the ipywidgets-7 frontend"
        assert page.locator(".output_error").count() == 0, page.inner_text(".output_area")
