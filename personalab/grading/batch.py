"""Grading a folder of submissions: the model server, the runs in parallel, the gradebook and feedback written."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import config, sandbox
from ..config import environment
from ..errors import InputError
from .assets import Assets, needed
from .assets import prepare as prepare_assets
from .gradebook import Report, write_outputs
from .isolation import Isolation
from .replycache import ReplyCache
from .run import grade_one
from .submissions import Submission, find_submissions


@contextlib.contextmanager
def model_server(enabled: bool, extra_models: Sequence[Path] = ()) -> Iterator[dict[str, Any]]:
    """Where kernels and checks find the model: ``OPENAI_BASE_URL`` if set (a workshop server, whose
    ``OPENAI_API_KEY`` is passed on), else a local server started for the grading run (``enabled``), and one more
    for each of ``extra_models`` (exercise 05's fine-tuned model): ``routes`` maps their names to their servers.
    Beside a workshop server, ``extra_models`` and the base model (unless the workshop server serves that very
    folder) get local servers and routes, so that exercise 05's sandboxes start none of their own."""
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    model = os.environ.get("PERSONALAB_MODEL") or None
    if base_url or not enabled:
        key = os.environ.get("OPENAI_API_KEY") if base_url else None
        where = {"base_url": base_url, "model": model, "api_key": key}
        if not (base_url and enabled and extra_models):
            yield where
            return
        # a workshop server beside exercise 05: the base and the fine-tuned model are served here, once, and routed
        # by name behind the reply cache, instead of by two servers in every sandbox
        from ..backends import base_model_dir
        from ..server import LocalServer

        local = [base_model_dir(config.base_model()), *extra_models]
        local = [m for m in dict.fromkeys(Path(m).resolve() for m in local) if str(m) != model]
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(LocalServer(m)) for m in local]
            yield {**where, "routes": {s.model: s.base_url for s in servers}}
        return
    try:
        from ..server import LocalServer
    except ImportError:
        print("warning: personalab.server is not available: grading without a model server", file=sys.stderr)
        yield {"base_url": None, "model": None, "api_key": None}
        return
    with LocalServer() as server, contextlib.ExitStack() as stack, \
            environment(OPENAI_BASE_URL=server.base_url, PERSONALAB_MODEL=server.model):
        extra = [stack.enter_context(LocalServer(m)) for m in extra_models if Path(m).resolve() != server.model_dir]
        yield {"base_url": server.base_url, "model": server.model, "api_key": None,
               "routes": {s.model: s.base_url for s in extra}}


@contextlib.contextmanager
def reply_cache(where: dict[str, Any], enabled: bool = True, progress: bool = False) -> Iterator[dict[str, Any]]:
    """``where`` with its http model server behind a :class:`~personalab.grading.replycache.ReplyCache` (for the
    sandboxes and for the grader's own checks, so a greedy request asked by a kernel and again by the grader is
    generated once); unchanged without a server, for an https one, or when not ``enabled``. Behind the cache, the
    ``routes`` of ``where`` (other models' servers) share its address: ``served`` lists every model it serves."""
    base_url = where.get("base_url")
    routes = where.get("routes") or {}
    if not enabled or not base_url or not base_url.startswith("http://"):
        yield {k: v for k, v in where.items() if k != "routes"}
        return
    from ..backends import SERVED_ENV

    served = [m for m in [where.get("model"), *routes] if m] if routes else []
    # the grader's own checks find the routed models behind the cache too (backends.served_elsewhere)
    listed = {SERVED_ENV: os.pathsep.join(served)} if served else {}
    with ReplyCache(base_url, routes=routes) as cache, environment(OPENAI_BASE_URL=cache.base_url, **listed):
        yield {**{k: v for k, v in where.items() if k != "routes"}, "base_url": cache.base_url, "served": served}
        if progress:
            print(f"reply cache: {cache.hits} of {cache.hits + cache.misses} greedy requests answered from memory",
                  file=sys.stderr)


def grade_all(
    submissions: Sequence[Submission],
    *,
    jobs: int = 1,
    cell_timeout: float | None = None,
    notebook_timeout: float | None = None,
    server: bool = True,
    progress: bool = True,
    isolation: Isolation | None = None,
    assets: Assets | None = None,
) -> list[Report]:
    """Grade notebooks in parallel (``jobs`` at a time), in the order given. ``assets``: prepared already
    (default: :func:`personalab.grading.assets.prepare` for these submissions' exercises, here)."""
    isolation = isolation or Isolation()
    if assets is None:
        assets = prepare_assets({s.exercise for s in submissions}, progress=progress)
    # exercise 05's kernels ask the grader's servers for the fine-tuned model too, instead of starting their own
    extra = [assets.finetuned_dir] if assets.finetuned_dir and needed({s.exercise for s in submissions}) else []
    with model_server(server, extra) as served, reply_cache(served, progress=progress) as where, \
            tempfile.TemporaryDirectory(prefix="personalab-relay-") as relay_tmp:
        relay_dir = Path(relay_tmp)
        os.chmod(relay_dir, 0o755)
        base_url = where["base_url"] if isolation.mode == "bwrap" else None
        with sandbox.relay(base_url, relay_dir) as relay:
            if relay is not None:
                isolation = dataclasses.replace(isolation, relay_dir=relay_dir)
            kw = {"cell_timeout": cell_timeout, "notebook_timeout": notebook_timeout, "isolation": isolation,
                  "assets": assets, **where}
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = [pool.submit(grade_one, s, **kw) for s in submissions]
                if progress:
                    from tqdm.auto import tqdm

                    for fut in tqdm(futures, desc="grading", unit="notebook"):
                        fut.result()
                return [f.result() for f in futures]


def grade_folder(root: str | Path, out: str | Path, *, exercise: str | None = None, jobs: int = 1,
                 cell_timeout: float | None = None, notebook_timeout: float | None = None,
                 server: bool = True, feedback_dir: str | Path | None = None, progress: bool = True,
                 isolation: Isolation | None = None, rerun: Sequence[str] | None = None,
                 assets: Assets | None = None) -> list[Report]:
    """Grade every notebook under ``root`` and write the gradebook ``out``, the feedback files and the class
    summary. ``rerun``: grade only these students again, keeping everyone else's rows of the existing ``out``."""
    root = Path(root)
    subs = find_submissions(root, exercise=exercise)
    if not subs:
        raise InputError("no notebooks (*.ipynb) found", path=root,
                         fix="put one STUDENT.ipynb per student there, or one folder per student")
    if rerun:
        known = sorted({s.student for s in subs})
        unknown = [name for name in rerun if name not in known]
        if unknown:
            raise InputError(f"no submission from {', '.join(map(repr, unknown))}", path=root, field="--rerun",
                             fix="use a student name from the gradebook: " + ", ".join(known[:20]) +
                             (" …" if len(known) > 20 else ""))
        if not Path(out).exists():
            raise InputError("--rerun regrades students of an existing gradebook, and there is none yet", path=out,
                             field="--out", fix="grade the whole folder first (without --rerun)")
        subs = [s for s in subs if s.student in set(rerun)]
    reports = grade_all(subs, jobs=jobs, cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                        server=server, progress=progress, isolation=isolation, assets=assets)
    write_outputs(reports, out, root=root, feedback_dir=feedback_dir, merge=bool(rerun))
    return reports
