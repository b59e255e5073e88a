"""The comparison report in Chromium after a full course: every picture loads, no cell says "not measured".

It runs last in the session (conftest.py moves it after the lessons' nbval run), so it reads the results the
lessons just saved; run alone with results missing, it runs ``personalab run-course`` first (3-5 min).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from browser_helpers import ROOT, browser, screenshot

from personalab import report, results

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.after_lessons]


def test_report_pictures_load_and_every_cell_is_measured(tmp_path: Path) -> None:
    missing = [k for k in report.SOURCES if k not in results.load_all()]
    if missing:
        cli = [sys.executable, "-m", "personalab.cli", "run-course", "--no-report"]
        proc = subprocess.run(cli, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"run-course failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    rep = report.build()
    md, page_path = rep.write(tmp_path)
    assert rep.figures_missing == [], rep.figures_missing
    with browser() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(page_path.as_uri())
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => ({alt: e.alt, ok: e.complete && e.naturalWidth > 0, src: e.src.slice(0, 22)}))"
        )
        screenshot(page, "report")
        assert len(images) == len(rep.figures) >= 4
        assert all(i["ok"] and i["src"] == "data:image/png;base64," for i in images), images
        captions = page.eval_on_selector_all("figcaption", "els => els.map(e => e.innerText)")
        assert len(captions) == len(images) and all(results.hardware() in c for c in captions), captions
        text = page.inner_text("body")
        assert "not measured" not in text.lower(), [line for line in text.splitlines() if "not measured" in line]
    for f in rep.figures:
        assert f"figures/{f.name}" in md.read_text() and (tmp_path / "figures" / f.name).is_file()
