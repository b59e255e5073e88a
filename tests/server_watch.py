"""A watcher of the ``transformers serve`` processes that appear while a grading run goes on."""

from __future__ import annotations

import threading


class ServerWatch:
    """Every model server that appears while it runs, except ``ignore_pid`` (the test session's own): ``seen`` holds
    all their command lines, ``in_workers`` those started inside a grading worker (a learner's kernel)."""

    def __init__(self, ignore_pid: int | None = None) -> None:
        self.ignore_pid = ignore_pid
        self.seen: set[str] = set()
        self.in_workers: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.2):
            for proc in psutil.process_iter(["pid", "cmdline"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                if "transformers" not in cmd or " serve " not in cmd or proc.info["pid"] == self.ignore_pid:
                    continue
                self.seen.add(cmd)
                try:
                    parents = [" ".join(p.cmdline()) for p in proc.parents()]
                except psutil.Error:
                    continue
                if any("personalab.grading" in p for p in parents):
                    self.in_workers.add(cmd)

    def __enter__(self) -> ServerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
