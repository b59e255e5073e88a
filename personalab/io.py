"""Small I/O helpers: atomic writes and YAML files validated by pydantic with line numbers."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError

M = TypeVar("M", bound=BaseModel)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder and a rename: never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename: never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def atomic_write_dir(dst: str | Path, write: Callable[[Path], None]) -> Path:
    """Fill a folder with ``write(tmp)`` in a temporary sibling, then rename it to ``dst`` (replacing an old one):
    never half written."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.tmp-"))
    tmp.chmod(0o755)
    try:
        write(tmp)
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, old)
        os.replace(tmp, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _node_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at pydantic location ``loc`` (or of its nearest parent)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for key in loc:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            child = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            child = node.value[key]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


YAML_FIX = "check indentation and quoting near that line (quote text that contains ': ' or starts with a quote)"


def parse_yaml(text: str, *, path: str | Path, fix: str = YAML_FIX) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text into (data, node tree for line numbers); a syntax error becomes :class:`InputError` naming
    ``path`` (a file or a variable name) and the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InputError(f"invalid YAML: {exc.problem or exc}", path=path, line=mark.line + 1 if mark else None,
                         fix=fix) from None
    return data, node


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file; syntax errors become :class:`InputError` with the line."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path=path, fix="check the path (it is relative to the folder you run from)")
    return parse_yaml(path.read_text(encoding="utf-8"), path=path)


def load_yaml_model(path: str | Path, model: type[M], *, fix: str | None = None) -> M:
    """Load a YAML file into a pydantic model; the first problem is reported with file, line and field."""
    data, node = read_yaml(path)
    return validate_with_lines(data, node, model, path=path, fix=fix)


def validate_with_lines(
    data: Any, node: yaml.Node | None, model: type[M], *, path: str | Path, fix: str | None = None
) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or None
        more = len(exc.errors()) - 1
        msg = err["msg"] + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
        raise InputError(msg, path=path, line=_node_line(node, loc), field=field, fix=fix) from None
