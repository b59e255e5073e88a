"""A local OpenAI-compatible server: ``transformers serve`` on 127.0.0.1 serving one local model.

Use it as a context manager (notebooks, tests) or through ``personalab serve``. The server runs in
its own process group so that stopping it leaves no process behind.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import config
from .errors import ServerError, SettingError

HOST = "127.0.0.1"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the server gets SIGTERM when the process that started it dies, even by SIGKILL (a killed kernel)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


#: Ports :meth:`LocalServer.start` tries when the one it picked is taken before the server binds it.
PORT_TRIES = 3


def _port_taken(message: str) -> bool:
    """Whether a server's start-up log says its port was taken (errno 98, "address already in use")."""
    return "address already in use" in message.lower() or "errno 98" in message.lower()


def _listens(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` (or one of its children) listens on ``port``; None where psutil cannot tell."""
    try:
        import psutil

        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                   for proc in procs for c in proc.net_connections(kind="tcp"))
    except Exception:  # noqa: BLE001 - psutil missing, process gone, no permission: undecided
        return None


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def default_threads(cpus: int | None = None) -> int:
    """Threads for one server: all the cores. Its OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``, see
    :func:`server_env`), so two servers at once (lesson 05's base and fine-tuned models) share the cores instead of
    spinning against each other. Measured on 2 cores (``benchmarks/RESULTS.md``, "Server threads", 2026-12-05):
    lesson 01's requests to one server took 0.81x the time on 2 passive threads as on 1 (spinning threads: 0.57x,
    but spinning made two servers of 2 threads each 3.2x slower); lesson 05's two servers took 32.1 s on 2 passive
    threads each against 36.0 s on 1 each.
    ``PERSONALAB_SERVER_THREADS`` overrides."""
    override = os.environ.get("PERSONALAB_SERVER_THREADS", "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise SettingError(f"PERSONALAB_SERVER_THREADS={override!r} is not a positive whole number",
                               fix="unset it, or set it to the threads each local server may use, e.g. 1")
        return int(override)
    return max(1, cpus or os.cpu_count() or 1)


def server_env(threads: int | None = None) -> dict[str, str]:
    """Environment for an offline ``transformers serve``: own HF_HOME with a hub folder, no Hub access."""
    env = dict(os.environ)
    hf_home = Path(env.get("HF_HOME") or config.home() / "hf")
    (hf_home / "hub").mkdir(parents=True, exist_ok=True)
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS=str(threads or default_threads()),
        OMP_WAIT_POLICY="PASSIVE",  # idle threads sleep: servers side by side do not spin against each other
        TOKENIZERS_PARALLELISM="false",
    )
    return env


#: The paged KV cache on a CPU: 512 blocks of 32 tokens (16,384 tokens in flight, e.g. 8 conversations of 2,000
#: tokens; about 0.75 GB for SmolLM2-135M). Left to itself, transformers sizes it from the machine's free memory
#: (9.6 GB measured on a 24 GB machine), which starves training and the kernels beside it.
CPU_KV_BLOCKS, CPU_KV_BLOCK_SIZE, CPU_BATCH_TOKENS = 512, 32, 1024


def batching_flags(*, gpu: bool) -> list[str]:
    """``transformers serve`` flags for continuous batching: on a GPU its own sizing, on a CPU a bounded cache."""
    flags = ["--continuous-batching"]
    if not gpu:
        flags += ["--cb-num-blocks", str(CPU_KV_BLOCKS), "--cb-block-size", str(CPU_KV_BLOCK_SIZE),
                  "--cb-max-batch-tokens", str(CPU_BATCH_TOKENS)]
    return flags


def serve_dtype() -> str | None:
    """``transformers serve --dtype`` here: bfloat16 on a GPU that computes in it natively (Ampere or newer),
    float16 on older GPUs (a T4), None on a CPU (the flag is left out: the checkpoint's own dtype)."""
    if not config.cuda_available():
        return None
    return "bfloat16" if config.cuda_bf16() else "float16"


class LocalServer:
    """``transformers serve MODEL_DIR`` on 127.0.0.1; ``.base_url`` and ``.model`` are what the client needs."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        port: int | None = None,
        threads: int | None = None,
        startup_timeout: float = 180.0,
        seed: int | None = 0,
        batching: bool = True,
    ) -> None:
        if model_dir is None:
            from .models import default_local_model_dir

            model_dir = default_local_model_dir()
        self.model_dir = Path(model_dir).expanduser().resolve()
        self.port = port
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.seed = seed
        self.batching = batching
        self.process: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def model(self) -> str:
        """The exact model name requests must use (the served directory)."""
        return str(self.model_dir)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def _check_model(self) -> None:
        if not (self.model_dir / "config.json").exists():
            raise ServerError(
                f"no model at {self.model_dir} (config.json missing). "
                "Convert the CPU base model with `personalab model smollm2`, or pass the folder of a saved checkpoint."
            )

    def start(self) -> LocalServer:
        """Start the server and wait until it answers. A port this class picked that another process takes before
        the server binds it (a kernel starting at the same moment) is replaced by a new one, up to
        :data:`PORT_TRIES` times."""
        if self.running:
            return self
        self._check_model()
        chosen = self.port is not None  # a port the caller chose is never replaced
        if chosen and port_in_use(self.port):
            raise ServerError(
                f"port {self.port} on {HOST} is already taken. Pick another with --port, "
                f"or stop the process using it (`lsof -i :{self.port}`)."
            )
        tries = 1 if chosen else PORT_TRIES
        for attempt in range(1, tries + 1):
            if not chosen:
                self.port = free_port()
            self._launch()
            try:
                self._wait_healthy()
            except ServerError as err:
                if attempt < tries and _port_taken(str(err)):
                    continue
                raise
            break
        return self

    def _launch(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "transformers.cli.transformers",
            "serve",
            str(self.model_dir),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        if self.seed is not None:
            cmd += ["--default-seed", str(self.seed)]
        if self.batching:  # answers concurrent requests together (benchmarks/RESULTS.md: bench_server_batching)
            cmd += batching_flags(gpu=config.cuda_available())
        if (dtype := serve_dtype()) is not None:
            cmd += ["--dtype", dtype]
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            cmd,
            env=server_env(self.threads),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        atexit.register(self.stop)

    def _wait_healthy(self) -> None:
        """Until ``/health`` answers ok from this server's own process (not from whoever else holds the port)."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                log = self.log_tail()
                self.stop()
                raise ServerError(f"the server exited while starting (model {self.model_dir}). Its log:\n{log}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as r:
                    ok = json.loads(r.read()).get("status") == "ok"
            except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
                ok = False  # not listening yet, or the port answers another protocol (someone else's socket)
            if ok and _listens(self.process.pid, self.port) is not False:
                return
            time.sleep(0.25)
        log = self.log_tail()
        self.stop()
        raise ServerError(f"the server did not become healthy within {self.startup_timeout:.0f}s. Its log:\n{log}")

    def log_tail(self, chars: int = 3000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-chars:]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and every process it started (its whole process group)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running on {self.base_url}" if self.running else "stopped"
        return f"LocalServer({self.model_dir.name}, {state})"
