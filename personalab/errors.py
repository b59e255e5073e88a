"""Errors that tell the learner which file, line and field is wrong, and how to fix it."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input in a file the learner or instructor edits (YAML spec, JSONL dataset, price table)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.message = message
        self.fix = fix
        super().__init__(self._render())

    def one_line(self) -> str:
        """The error on a single line, for command-line output."""
        return self._render().replace("\n  how to fix: ", "; how to fix: ")

    def _render(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f", field '{self.field}'"
        text = f"{where}: {self.message}"
        if self.fix:
            text += f"\n  how to fix: {self.fix}"
        return text


class SettingError(ValueError):
    """An environment setting (``PERSONALAB_*``) has a value the course cannot use: ``problem`` and ``fix``."""

    def __init__(self, problem: str, *, fix: str) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}; how to fix: {fix}")

    def _render_traceback_(self) -> list[str]:
        """IPython shows this one line instead of a traceback (the message already says what to do)."""
        return [f"SettingError: {self}"]


class BackendError(RuntimeError):
    """The chat backend (local server, OpenAI, a workshop server) could not be used."""


class ServerError(RuntimeError):
    """The local OpenAI-compatible server could not be started or died."""
