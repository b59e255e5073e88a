"""API drift checks: do the pinned Unsloth, TRL, PEFT and transformers accept what the course passes them?

Colab images and new releases rename keyword arguments; a course that passes a stale one breaks at the
first training cell. These helpers read the accepted parameter names of every callee **without importing
Unsloth** (importing it patches transformers and TRL for the whole process): the source of the pinned Unsloth
and unsloth-zoo, installed or from their wheels, is parsed with :mod:`ast`, both the GPU callees and the CPU
mode's (``unsloth_zoo/cpu/loader.py``, what trains on a machine without a GPU), and compared with
:func:`personalab.finetune.config.api_calls`, the single list of what the training code passes.
``tests/test_finetune_api.py`` runs them; ``python -m personalab.finetune.api_drift`` prints a report.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config as pl_config

PYPROJECT = pl_config.REPO_ROOT / "pyproject.toml"
CONSTRAINTS = pl_config.REPO_ROOT / "constraints.txt"
#: Where a wheel may already be (first match wins); downloads go to the last one.
WHEEL_DIRS = ("/tmp/wheels",)


def wheel_cache() -> Path:
    return pl_config.home() / "wheels"


# ------------------------------------------------------------------------------------------ pins
def _pin_list(items: Iterable[str]) -> dict[str, str]:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    out = {}
    for item in items:
        req = Requirement(item)
        pins = [s.version for s in req.specifier if s.operator == "=="]
        if pins:
            out[canonicalize_name(req.name)] = pins[0]
    return out


def pyproject_pins() -> dict[str, dict[str, str]]:
    """``{"dependencies": {name: version}, "colab": {...}, ...}`` from pyproject.toml's exact pins."""
    text = PYPROJECT.read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python 3.10: the lists are simple enough for a regular expression
        lists: dict[str, list[str]] = {}
        key = None
        for line in text.splitlines():
            m = re.match(r"([\w-]+)\s*=\s*\[\s*$", line)
            if m:
                key = m.group(1)
                lists[key] = []
            elif key and line.strip().startswith("]"):
                key = None
            elif key:
                lists[key] += re.findall(r'"([^"]+)"', line.split("#", 1)[0])
        return {k: _pin_list(v) for k, v in lists.items() if k in ("dependencies", "colab", "dev")}
    data = tomllib.loads(text)["project"]
    out = {"dependencies": _pin_list(data.get("dependencies", []))}
    for extra, items in data.get("optional-dependencies", {}).items():
        out[extra] = _pin_list(items)
    return out


def constraint_pins() -> dict[str, str]:
    lines = [ln.split("#", 1)[0].strip() for ln in CONSTRAINTS.read_text(encoding="utf-8").splitlines()]
    return _pin_list(ln for ln in lines if ln and "==" in ln)


# ------------------------------------------------------------------------------------------ wheels
def find_wheel(name: str, version: str, *, download: bool = True) -> Path | None:
    """The wheel ``name==version`` from a known folder or the cache; downloaded (no deps) when missing."""
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    for d in (*WHEEL_DIRS, wheel_cache()):
        hits = sorted(Path(d).glob(pattern)) if Path(d).is_dir() else []
        if hits:
            return hits[0]
    if not download:
        return None
    wheel_cache().mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "-d", str(wheel_cache()), f"{name}=={version}"], capture_output=True, text=True)
    hits = sorted(wheel_cache().glob(pattern))
    return hits[0] if r.returncode == 0 and hits else None


@dataclass
class Package:
    """One pinned package's Python source and ``Requires-Dist`` entries, from its wheel or its installed files."""

    name: str
    version: str
    origin: str  # the wheel's path, or "installed"
    texts: dict[str, str]
    requires: list[str]

    @classmethod
    def from_wheel(cls, wheel: Path) -> Package:
        texts, meta = {}, ""
        with zipfile.ZipFile(wheel) as z:
            for n in z.namelist():
                if n.endswith(".py") and "/tests/" not in n:
                    texts[n] = z.read(n).decode("utf-8", "replace")
                elif n.endswith(".dist-info/METADATA"):
                    meta = z.read(n).decode("utf-8")
        name, version = wheel.name.split("-")[:2]
        requires = [ln.split(":", 1)[1].strip() for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
        return cls(name, version, str(wheel), texts, requires)

    @classmethod
    def installed(cls, name: str, version: str) -> Package | None:
        """The installed distribution ``name==version`` (read, never imported); None when absent or another version."""
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            dist = distribution(name)
        except PackageNotFoundError:
            return None
        if dist.version != version:
            return None
        texts = {}
        for f in dist.files or []:
            if f.suffix == ".py" and "/tests/" not in f.as_posix() and not f.as_posix().startswith(".."):
                path = Path(str(dist.locate_file(f)))
                if path.is_file():
                    texts[f.as_posix()] = path.read_text(encoding="utf-8", errors="replace")
        return cls(name, version, "installed", texts, list(dist.requires or []))


def pinned_package(name: str, version: str, *, download: bool = True) -> Package | None:
    """The pinned package's source: the installed copy when it is that version, else its wheel."""
    pkg = Package.installed(name, version)
    if pkg is not None:
        return pkg
    wheel = find_wheel(name, version, download=download)
    return Package.from_wheel(wheel) if wheel else None


def unmet_requirements(pkg: Package, pins: dict[str, str], *, python: str = "3.12") -> list[str]:
    """Requirements of ``pkg`` (for Linux x86_64, no extras) that the exact ``pins`` violate."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    env = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
           "python_version": python, "python_full_version": python + ".0", "extra": ""}
    out = []
    for req in map(Requirement, pkg.requires):
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name in pins and not req.specifier.contains(pins[name], prereleases=True):
            out.append(f"{pkg.name} needs {req.name}{req.specifier}, pinned {pins[name]}")
    return out


# ------------------------------------------------------------------------------------------ unsloth source
@dataclass
class Params:
    """The parameter names a callable accepts by name, and whether it also takes ``**kwargs``."""

    names: set[str]
    var_kw: bool = False
    where: str = ""

    def unknown(self, kwargs: Iterable[str]) -> list[str]:
        return sorted(set(kwargs) - self.names)


def _args_of(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Params:
    a = fn.args
    names = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs} - {"self", "cls"}
    return Params(names, a.kwarg is not None)


class WheelSource:
    """The Python modules of one or more packages, parsed on demand, to look up functions and methods by name."""

    def __init__(self, *packages: Package) -> None:
        self.texts: dict[str, str] = {}
        self._parsed: dict[str, ast.Module | None] = {}
        for pkg in packages:
            self.texts.update(pkg.texts)

    def _modules(self, needle: str, module: str | None) -> Iterable[tuple[str, ast.Module]]:
        for path, text in self.texts.items():
            if (module and not path.endswith(module)) or needle not in text:
                continue
            if path not in self._parsed:
                try:
                    self._parsed[path] = ast.parse(text)
                except SyntaxError:
                    self._parsed[path] = None
            if self._parsed[path] is not None:
                yield path, self._parsed[path]

    def find_class_method(self, cls: str, method: str, module: str | None = None) -> tuple[str, ast.FunctionDef] | None:
        """A method of a top-level class (classes defined inside ``if`` blocks are platform fallbacks)."""
        for path, mod in self._modules(f"class {cls}", module):
            for node in mod.body:
                if isinstance(node, ast.ClassDef) and node.name == cls:
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == method:
                            return path, item
        return None

    def find_function(self, name: str, module: str | None = None) -> tuple[str, ast.FunctionDef] | None:
        for path, mod in self._modules(f"def {name}", module):
            for node in mod.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                    return path, node
        return None

    def params(self, cls: str | None, name: str, module: str | None = None, _depth: int = 0) -> Params:
        """Named parameters of ``cls.name`` (or function ``name``), following ``functools.wraps(X.y)`` when the
        definition itself only takes ``*args, **kwargs``."""
        hit = self.find_class_method(cls, name, module) if cls else self.find_function(name, module)
        if hit is None:
            raise LookupError(f"{cls + '.' if cls else ''}{name} not found in the wheel")
        path, fn = hit
        p = _args_of(fn)
        p.where = f"{path}:{fn.lineno}"
        if _depth < 4 and (p.names <= {"model", "trainer"} or not p.names) and fn.args.vararg is not None:
            target = _wrapped(fn)
            if target is not None:
                return self.params(target[0], target[1], _depth=_depth + 1)
        return p


def _wrapped(fn: ast.FunctionDef) -> tuple[str | None, str] | None:
    """``(Class, name)`` from a ``@functools.wraps(Class.name)`` / ``@wraps(name)`` decorator."""
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "attr", getattr(dec.func, "id", "")) == "wraps":
            arg = dec.args[0] if dec.args else None
            if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name):
                return arg.value.id, arg.attr
            if isinstance(arg, ast.Name):
                return None, arg.id
    return None


LOADER = "unsloth/models/loader.py"
#: Unsloth's CPU mode (no GPU found): ``unsloth.FastLanguageModel`` is this module's ``FastCPUModel``.
CPU_LOADER = "unsloth_zoo/cpu/loader.py"


def unsloth_params(unsloth: Package, zoo: Package, *, cuda: bool = True) -> dict[str, Params]:
    """Accepted parameter names of the Unsloth calls the course makes, read from the packages' source: the GPU
    definitions (``cuda=True``) or those of Unsloth's CPU mode (``cuda=False``), which is what runs without a GPU."""
    src = WheelSource(unsloth, zoo)
    responses = src.params(None, "train_on_responses_only", "unsloth_zoo/dataset_utils.py")
    if not cuda:
        return {
            "unsloth.FastLanguageModel.from_pretrained": src.params("FastCPUModel", "from_pretrained", CPU_LOADER),
            "unsloth.FastLanguageModel.get_peft_model": src.params("FastCPUModel", "get_peft_model", CPU_LOADER),
            "unsloth.chat_templates.train_on_responses_only": responses,
            "unsloth.save_pretrained_merged": src.params(None, "save_pretrained_merged", CPU_LOADER),
        }
    return {
        "unsloth.FastLanguageModel.from_pretrained": src.params("FastLanguageModel", "from_pretrained", LOADER),
        "unsloth.FastLanguageModel.get_peft_model": src.params("FastLanguageModel", "get_peft_model", LOADER),
        "unsloth.chat_templates.train_on_responses_only": responses,
        # the method Unsloth binds to a text model (save.py, patch_saving_functions)
        "unsloth.save_pretrained_merged": src.params(None, "unsloth_generic_save_pretrained_merged", "unsloth/save.py"),
    }


def unsloth_save_methods(unsloth: Package, zoo: Package | None = None, *, cuda: bool = True) -> set[str]:
    """The ``save_method`` values Unsloth accepts: those save.py compares with (GPU), or the CPU mode's list."""
    if not cuda:
        text = (zoo.texts if zoo else {}).get(CPU_LOADER, "")
        body = re.search(r"def _check_save_method.*?if save_method not in \(([^)]*)\)", text, re.S)
        return set(re.findall(r'"(\w+)"', body.group(1))) if body else set()
    return set(re.findall(r'save_method\s*==\s*"(\w+)"', unsloth.texts.get("unsloth/save.py", "")))


# ------------------------------------------------------------------------------------------ installed libs
def _dataclass_fields(cls: type) -> Params:
    return Params({f.name for f in dataclasses.fields(cls)}, False, cls.__qualname__)


def _signature(fn: Any, *, pops: bool = False) -> Params:
    sig = inspect.signature(fn)
    names = {n for n, p in sig.parameters.items()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n not in ("self", "cls")}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    if pops:  # names read out of **kwargs in the body: kwargs.pop("x", ...) / kwargs.get("x")
        src = inspect.getsource(fn)
        names |= set(re.findall(r'kwargs\.(?:pop|get)\(\s*"(\w+)"', src))
    return Params(names, var_kw, getattr(fn, "__qualname__", str(fn)))


def installed_params() -> dict[str, Params]:
    """Accepted parameter names of the TRL / PEFT / transformers calls, from the installed (pinned) versions."""
    import peft
    import transformers
    import trl
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

    from .trainers import trl_class  # TRL's own classes, also after Unsloth replaced them in this process

    sft_trainer = trl_class(trl.SFTTrainer)

    gen = _signature(transformers.GenerationMixin.generate)
    gen.names |= set(GenerationConfig().to_dict()) | {"pad_token_id"}
    return {
        "trl.SFTConfig": _dataclass_fields(trl_class(trl.SFTConfig)),
        "trl.SFTTrainer": _signature(sft_trainer.__init__),
        "trl.SFTTrainer.compute_loss": _signature(sft_trainer.compute_loss),
        "peft.LoraConfig": _dataclass_fields(peft.LoraConfig),
        "peft.get_peft_model": _signature(peft.get_peft_model),
        "peft.prepare_model_for_kbit_training": _signature(peft.prepare_model_for_kbit_training),
        "transformers.BitsAndBytesConfig": _signature(transformers.BitsAndBytesConfig.__init__),
        "transformers.AutoModelForCausalLM.from_pretrained": _signature(PreTrainedModel.from_pretrained, pops=True),
        "transformers.PreTrainedTokenizerBase.apply_chat_template": _signature(
            PreTrainedTokenizerBase.apply_chat_template),
        "transformers.GenerationMixin.generate": gen,
    }


def check_calls(calls: Iterable[tuple[str, Iterable[str]]], accepted: dict[str, Params]) -> list[str]:
    """Problems: a callee the checker does not know, or a keyword its pinned version does not accept."""
    out = []
    for callee, kwargs in calls:
        if callee not in accepted:
            out.append(f"{callee}: no signature to check against")
            continue
        bad = accepted[callee].unknown(kwargs)
        if bad:
            out.append(f"{callee} ({accepted[callee].where}) does not accept {', '.join(bad)}")
    return out


# ------------------------------------------------------------------------------------------ source scan
#: Calls in the course's source whose literal keywords are checked: call name → callee key.
WATCHED = {
    "SFTConfig": "trl.SFTConfig",
    "SFTTrainer": "trl.SFTTrainer",
    "LoraConfig": "peft.LoraConfig",
    "BitsAndBytesConfig": "transformers.BitsAndBytesConfig",
    "prepare_model_for_kbit_training": "peft.prepare_model_for_kbit_training",
    "FastLanguageModel.from_pretrained": "unsloth.FastLanguageModel.from_pretrained",
    "FastLanguageModel.get_peft_model": "unsloth.FastLanguageModel.get_peft_model",
    "get_peft_model": "peft.get_peft_model",
    "train_on_responses_only": "unsloth.chat_templates.train_on_responses_only",
    "save_pretrained_merged": "unsloth.save_pretrained_merged",
    "AutoModelForCausalLM.from_pretrained": "transformers.AutoModelForCausalLM.from_pretrained",
    "apply_chat_template": "transformers.PreTrainedTokenizerBase.apply_chat_template",
    "generate": "transformers.GenerationMixin.generate",
}


def _call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        base = f.value.id if isinstance(f.value, ast.Name) else ""
        return f"{base}.{f.attr}" if base and f"{base}.{f.attr}" in WATCHED else f.attr
    return ""


@dataclass
class ScannedCall:
    callee: str
    keywords: list[str]
    starred: list[str]  # source of each ``**expr``
    where: str


def scan_source(text: str, where: str) -> list[ScannedCall]:
    """Watched third-party calls in Python source, with their literal keywords and ``**`` arguments."""
    out = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in WATCHED:
                kws = [k.arg for k in node.keywords if k.arg is not None]
                starred = [ast.unparse(k.value) for k in node.keywords if k.arg is None]
                out.append(ScannedCall(WATCHED[name], kws, starred, f"{where}:{node.lineno}"))
    return out


def notebook_sources() -> list[Path]:
    root = pl_config.REPO_ROOT / "notebooks_src"
    return sorted(root.glob("*/04_*.py"))


def package_sources() -> list[Path]:
    return sorted((Path(__file__).parent).glob("*.py"))


def unsloth_packages(*, download: bool = True) -> tuple[Package, Package] | None:
    """(unsloth, unsloth-zoo) at the versions constraints.txt pins, installed or from their wheels."""
    pins = constraint_pins()
    pkgs = (pinned_package("unsloth", pins["unsloth"], download=download),
            pinned_package("unsloth_zoo", pins["unsloth-zoo"], download=download))
    return None if None in pkgs else pkgs  # type: ignore[return-value]


def main() -> int:  # pragma: no cover - a report for people; the tests check the same things
    from .config import FinetuneConfig, api_calls

    pkgs = unsloth_packages()
    cfg = FinetuneConfig()
    for backend, cuda in (("peft", False), ("peft", True), ("unsloth", False), ("unsloth", True)):
        accepted = installed_params()
        if pkgs:
            accepted |= unsloth_params(*pkgs, cuda=cuda)
        for p in check_calls(api_calls(cfg, backend, cuda=cuda), accepted):
            print(f"[{backend}, cuda={cuda}] {p}")
    for pkg in pkgs or ():
        for line in unmet_requirements(pkg, constraint_pins()):
            print("PIN", line)
    print("done" if pkgs else "done (Unsloth's source not found: its calls were not checked)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
