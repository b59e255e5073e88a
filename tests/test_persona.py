from pathlib import Path

import pytest

from personalab import persona
from personalab.errors import InputError


def test_taskmaster_renders_every_section():
    spec = persona.taskmaster()
    text = spec.render()
    assert text.startswith("You are TaskMaster, a productivity coach in AI form.")
    for part in ("Core traits:", "Response pattern:", '"Great choice!"', "Vocabulary to avoid:", "Rules:"):
        assert part in text
    assert spec.markers == ["Great choice!", "Nice work!", "Let's get this done"]


def test_overlay_is_appended_and_renders_alone():
    spec = persona.taskmaster()
    overlay = persona.load_overlay("engineering")
    assert spec.render(overlay).endswith(persona.render_overlay(overlay))
    assert "sprint" in persona.render_overlay(overlay)
    assert set(persona.available_overlays()) >= {"marketing", "engineering", "sales", "end-of-quarter"}


@pytest.mark.parametrize(
    "text, line, field",
    [
        ("name: X\nrole: r\ntraits: []\nresponse_pattern: [a]\nvocabulary: {use: [hi]}\n", 3, "traits"),
        ("name: X\nrole: r\ntraits: [{name: a, description: b}]\nresponse_pattern: [a]\n", None, "vocabulary"),
        (
            "name: X\nrole: r\ntraits: [{name: a, description: b}]\nresponse_pattern: [a]\n"
            "vocabulary:\n  use: [hi]\n  avoid: [x]\n  favourite: [y]\n",
            8,
            "vocabulary.favourite",
        ),
        ("name: X\nrole: r\n  traits: [\n", 3, None),
    ],
)
def test_bad_spec_names_file_line_and_field(tmp_path: Path, text, line, field):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        persona.load_persona(path)
    err = info.value
    assert err.path == str(path)
    assert err.field == field
    if line is not None:
        assert err.line == line
    assert "how to fix" in str(err)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        persona.load_persona(tmp_path / "nope.yaml")


def test_markers_are_case_insensitive_and_avoided_phrases_found():
    spec = persona.taskmaster()
    assert persona.has_marker("great CHOICE, the task is set", spec)
    assert not persona.has_marker("Task created.", spec)
    assert persona.uses_avoided("You should rest.", spec) == ["You should"]
    assert persona.marker_rate(["Nice work!", "ok", "ok", "ok"], spec) == 0.25
    assert persona.marker_rate([], spec) == 0.0
