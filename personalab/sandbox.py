"""Run one submission's grading worker in a throw-away sandbox (Linux, bubblewrap; no Docker, no root needed).

What the sandbox gives each submission (``bwrap`` from the ``bubblewrap`` package):

- its own empty HOME and ``/tmp`` (tmpfs) and a writable copy of its working folder; the rest of the
  file system it sees is a read-only whitelist: the system (``/usr``, ``/etc``, ...), the Python
  installation, the ``personalab`` package and ``data/``. ``solutions/``, ``notebooks_src/``, ``grader/``
  (the hidden cases), ``tests/``, git history and the grader's HOME are not there at all;
- no network: a private network namespace with only loopback. The model server is reached through a
  Unix socket bound into the sandbox (:class:`ModelRelay`), nothing else;
- its own PID namespace: when the worker ends or is killed, the kernel kills every process the submission
  started, new sessions and double-forked daemons included (``--die-with-parent`` covers a grader crash);
- a memory and a process limit: a cgroup (v2 delegated to this user, or v1 when run as root) when one can
  be created, else ``RLIMIT_AS`` per process and ``RLIMIT_NPROC`` (which Linux does not apply to root).

:func:`probe` tells whether bwrap works here; ``personalab grade --sandbox auto`` falls back to the
unsandboxed worker (with a warning) where it does not, e.g. on macOS or Windows.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: where things live inside the sandbox
HOME = "/sandbox/home"
WORK = f"{HOME}/work"
JOB = "/sandbox/job"
RELAY_DIR = "/sandbox/relay"
SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEFAULT_MEMORY_MB = 8192  # exercise 04 trains SmolLM2-135M in float32: about 3 GB resident, more address space
DEFAULT_PROCESSES = 256


@dataclass(frozen=True)
class Limits:
    """Per-submission resource limits."""

    memory_mb: int = DEFAULT_MEMORY_MB
    processes: int = DEFAULT_PROCESSES


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when bubblewrap can build the sandbox here, else a one-line reason."""
    if not sys.platform.startswith("linux"):
        return f"sandboxing needs Linux (this is {sys.platform})"
    exe = shutil.which("bwrap")
    if not exe:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    cmd = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
           "true"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not run ({exc})"
    if res.returncode != 0:
        why = (res.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bwrap cannot create namespaces here ({why}); unprivileged user namespaces may be disabled"
    return None


# ------------------------------------------------------------------------------------------ file system


def _python_paths() -> list[Path]:
    """Folders the Python installation needs: prefixes and the interpreter's real location."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.executable).resolve().parent}
    paths |= {Path(p) for p in sys.path if p and Path(p).is_dir() and Path(p).name in ("site-packages",
                                                                                         "dist-packages")}
    return sorted(p.resolve() for p in paths if p.exists())


def readonly_paths(repo_root: Path, python_path: Sequence[str], personalab_home: Path | None) -> list[tuple[str, str]]:
    """(host path, sandbox path) pairs mounted read-only. The repository contributes only its package and
    data: solutions, notebook sources, the hidden grader cases, tests and git history stay out."""
    repo_root = repo_root.resolve()
    out: list[tuple[str, str]] = []

    def add(path: Path, dest: str | None = None) -> None:
        path = path.resolve()
        if not path.exists():
            return
        if path == repo_root or path in repo_root.parents:  # the repository root or a folder above it
            for part in ("personalab", "data"):
                add(repo_root / part)
            return
        pair = (str(path), dest or str(path))
        if pair not in out:
            out.append(pair)

    for p in _python_paths():
        add(p)
    for entry in python_path:
        if entry:
            add(Path(entry))
    add(repo_root / "personalab")
    add(repo_root / "data")
    if personalab_home is not None:
        for sub in ("models", "hf"):
            add(personalab_home / sub, f"{HOME}/.cache/personalab/{sub}")
    # inner mounts after outer ones, so a folder inside another is not hidden by it
    return sorted(out, key=lambda pair: pair[1].count("/"))


def bwrap_command(
    argv: Sequence[str],
    *,
    workdir: Path,
    jobdir: Path,
    relay_dir: Path | None,
    readonly: Sequence[tuple[str, str]],
    hide: Sequence[Path] = (),
) -> list[str]:
    """The bwrap command line running ``argv`` in the sandbox (``workdir`` and ``jobdir`` writable)."""
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
           "--hostname", "grading", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/sandbox",
           "--dir", HOME]
    for d in SYSTEM_DIRS:
        p = Path(d)
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            cmd += ["--ro-bind", d, d]
    for src, dest in readonly:
        if dest.startswith(SYSTEM_DIRS) and src == dest:
            continue  # already visible through the system folders
        cmd += ["--ro-bind", src, dest]
    for path in hide:  # e.g. a grader/ folder that a PYTHONPATH entry would otherwise expose
        cmd += ["--tmpfs", str(path)]
    cmd += ["--bind", str(workdir), WORK, "--bind", str(jobdir), JOB]
    if relay_dir is not None:
        cmd += ["--bind", str(relay_dir), RELAY_DIR]
    cmd += ["--chdir", WORK, "--"]
    return cmd + list(argv)


# --------------------------------------------------------------------------------------- cgroup limits


class ResourceGroup:
    """A cgroup holding one sandbox (memory and process limits, and a way to kill everything in it).

    ``create`` returns None where no cgroup can be made (no delegation, read-only cgroupfs): the caller
    then falls back to rlimits (:func:`rlimit_prefix`)."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs

    @classmethod
    def create(cls, limits: Limits) -> ResourceGroup | None:
        name = f"personalab-grade-{os.getpid()}-{secrets.token_hex(4)}"
        v2 = _own_cgroup_v2()
        if v2 is not None:
            path = v2.parent / name if (v2 / "cgroup.procs").exists() else v2 / name
            with contextlib.suppress(OSError):
                path.mkdir()
                group = cls([path])
                if group._write(path, "memory.max", str(limits.memory_mb * 2**20)) and \
                        group._write(path, "pids.max", str(limits.processes)):
                    group._write(path, "memory.swap.max", "0")
                    return group
                group.remove()
        dirs: list[Path] = []
        for ctrl, key, value in (("memory", "memory.limit_in_bytes", limits.memory_mb * 2**20),
                                 ("pids", "pids.max", limits.processes)):
            base = _own_cgroup_v1(ctrl)
            if base is None:
                break
            path = base / name
            try:
                path.mkdir()
            except OSError:
                break
            dirs.append(path)
            if not cls._write(path, key, str(value)):
                break
        else:
            return cls(dirs)
        cls(dirs).remove()
        return None

    @staticmethod
    def _write(path: Path, key: str, value: str) -> bool:
        try:
            (path / key).write_text(value)
            return True
        except OSError:
            return False

    def shell_prefix(self) -> list[str]:
        """A command prefix that moves itself into the group before exec'ing the rest."""
        procs = " ".join(f"'{d / 'cgroup.procs'}'" for d in self.dirs)
        return ["sh", "-c", f'for f in {procs}; do echo $$ > "$f" || exit 111; done; exec "$@"', "sh"]

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                out |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
        return out

    def kill_all(self) -> None:
        for d in self.dirs:
            if (d / "cgroup.kill").exists():
                self._write(d, "cgroup.kill", "1")
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            threading.Event().wait(0.05)

    def oom_killed(self) -> bool:
        """Whether the memory limit killed something in this group."""
        for d in self.dirs:
            with contextlib.suppress(OSError):
                for name in ("memory.events", "memory.oom_control"):
                    if (d / name).exists():
                        text = (d / name).read_text()
                        for line in text.splitlines():
                            key, _, val = line.partition(" ")
                            if key in ("oom_kill", "oom") and val.strip() not in ("", "0"):
                                return True
            with contextlib.suppress(OSError):
                if (d / "memory.failcnt").exists() and int((d / "memory.failcnt").read_text()) > 0:
                    return True
        return False

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(20):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    threading.Event().wait(0.05)


def _own_cgroup_v2() -> Path | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
                    controllers = root / "cgroup.controllers"
                    if controllers.exists():
                        path = root / line[3:].lstrip("/")
                        have = set((path / "cgroup.controllers").read_text().split()) if path.exists() else set()
                        if {"memory", "pids"} <= have and os.access(path, os.W_OK):
                            return path
    return None


def _own_cgroup_v1(controller: str) -> Path | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, rel = line.split(":", 2)
            if controller in ctrls.split(","):
                path = Path("/sys/fs/cgroup") / controller / rel.lstrip("/")
                if path.is_dir() and os.access(path, os.W_OK):
                    return path
    return None


def rlimit_prefix(limits: Limits) -> list[str]:
    """Fallback limits without a cgroup: address space per process, processes per user namespace."""
    prlimit = shutil.which("prlimit")
    if not prlimit:
        return []
    return [prlimit, f"--as={limits.memory_mb * 2**20}", f"--nproc={limits.processes}"]


# ------------------------------------------------------------------------------------- model server relay


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _serve(listener: socket.socket, connect: callable, stop: threading.Event) -> None:  # type: ignore[valid-type]
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = connect()
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


class ModelRelay:
    """Grader side: a Unix socket (bound into every sandbox) relayed to the model server's TCP port."""

    def __init__(self, base_url: str, folder: Path) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// model servers can be relayed into the sandbox, not {base_url}")
        self.target = (parts.hostname, parts.port or 80)
        self.folder = folder
        self.path = folder / "model.sock"
        self.stop = threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen(64)
        os.chmod(self.path, 0o666)
        threading.Thread(target=_serve, args=(self.listener, self._connect, self.stop), daemon=True).start()

    def _connect(self) -> socket.socket:
        return socket.create_connection(self.target, timeout=30)

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.listener.close()


def sandbox_base_url(base_url: str) -> str:
    """The URL the sandboxed kernel uses: the same port on its own loopback (relayed to the server)."""
    parts = urlsplit(base_url)
    port = parts.port or 80
    return urlunsplit(("http", f"127.0.0.1:{port}", parts.path, parts.query, parts.fragment))


def start_inner_relay(base_url: str, socket_path: str) -> None:
    """Sandbox side (in the worker): listen on 127.0.0.1:PORT and relay each connection to the Unix socket."""
    port = urlsplit(base_url).port or 80
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)

    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(socket_path)
        return s

    threading.Thread(target=_serve, args=(listener, connect, threading.Event()), daemon=True).start()


@contextlib.contextmanager
def relay(base_url: str | None, folder: Path) -> Iterator[ModelRelay | None]:
    """A :class:`ModelRelay` for an http model server (None without one, or for https servers)."""
    if not base_url or urlsplit(base_url).scheme != "http":
        yield None
        return
    r = ModelRelay(base_url, folder)
    try:
        yield r
    finally:
        r.close()
