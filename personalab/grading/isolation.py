"""What a submission's run can see: the kernel's environment, and whether it runs in the sandbox."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import config, sandbox
from ..errors import InputError
from ..sandbox import Limits
from .hidden import GRADER_DIR

#: environment variables never passed to a learner's kernel (besides any name containing KEY/TOKEN/SECRET/PASSWORD)
DROPPED_ENV = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
               "FTP_PROXY", "JPY_PARENT_PID", "JUPYTER_TOKEN")
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` less :data:`DROPPED_ENV` and every name that looks like a secret."""
    return {k: v for k, v in environ.items() if k not in DROPPED_ENV and not _SECRET.search(k)}


def kernel_env(base_url: str | None = None, model: str | None = None, api_key: str | None = None) -> dict[str, str]:
    """The learner kernel's environment: no secrets, no proxies, offline Hub, the grader's model server.

    ``api_key`` is passed on only for a workshop server (never for api.openai.com)."""
    env = without_secrets(os.environ)
    env.pop("OPENAI_BASE_URL", None)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PERSONALAB_GRADING": "1",
                "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"})
    if base_url:
        env["OPENAI_BASE_URL"] = base_url
        if api_key and "api.openai.com" not in base_url:
            env["OPENAI_API_KEY"] = api_key
    if model:
        env["PERSONALAB_MODEL"] = model
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(config.REPO_ROOT), *paths])  # the folder that holds personalab/
    return env


@dataclass(frozen=True)
class Isolation:
    """How submissions run: ``mode`` "bwrap" (the sandbox of :mod:`personalab.sandbox`) or "none"."""

    mode: str = "none"
    limits: Limits = field(default_factory=Limits)
    relay_dir: Path | None = None  # folder of the model relay's Unix socket (bwrap mode, http server)
    grader_dir: Path = GRADER_DIR


def resolve_isolation(choice: str, *, limits: Limits | None = None, grader_dir: Path | None = None) -> Isolation:
    """``auto`` → the sandbox where bubblewrap works, else unsandboxed with a warning; ``bwrap`` → the sandbox
    or an InputError saying why it cannot run; ``none`` → unsandboxed."""
    extra = {"limits": limits or Limits(), "grader_dir": grader_dir or GRADER_DIR}
    if choice == "none":
        return Isolation("none", **extra)
    why = sandbox.probe()
    if why is None:
        return Isolation("bwrap", **extra)
    if choice == "bwrap":
        raise InputError(f"cannot sandbox the submissions: {why}", field="--sandbox",
                         fix="install bubblewrap, or pass --sandbox none to grade without a sandbox")
    if choice != "auto":
        raise InputError(f"unknown sandbox {choice!r}", field="--sandbox", fix="use auto, bwrap or none")
    print(f"warning: grading WITHOUT a sandbox: {why}. Submissions run with your user's rights "
          "(see docs/INSTRUCTORS.md).", file=sys.stderr)
    return Isolation("none", **extra)


def sandbox_env(env: dict[str, str], *, relayed: bool) -> dict[str, str]:
    """The kernel's environment inside the sandbox: its own HOME, tmp and caches; the relayed model URL."""
    out = {k: v for k, v in env.items() if not k.startswith(("XDG_", "JUPYTER_", "IPYTHONDIR", "VIRTUAL_ENV_PROMPT"))}
    out.update({"HOME": sandbox.HOME, "TMPDIR": "/tmp", "PERSONALAB_HOME": f"{sandbox.HOME}/.cache/personalab",
                "HF_HOME": f"{sandbox.HOME}/.cache/personalab/hf", "USER": "learner", "LOGNAME": "learner",
                "PERSONALAB_SANDBOX": "bwrap"})
    for key in ("PERSONALAB_RESULTS", "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_DATASETS_CACHE"):
        out.pop(key, None)
    if env.get("OPENAI_BASE_URL"):
        if relayed:
            out["OPENAI_BASE_URL"] = sandbox.sandbox_base_url(env["OPENAI_BASE_URL"])
        else:
            out.pop("OPENAI_BASE_URL")
    return out
