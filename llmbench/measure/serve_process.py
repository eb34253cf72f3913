"""Start `transformers serve` on loopback for a load point, wait for it with a bound, and stop it and its children
on every path (docs/serving.md).

The server runs in its own session (process group), so a Ctrl-C in the terminal reaches only llmbench, which stops
it in order; it also asks the kernel to send it SIGTERM if its parent (the worker) dies first (PR_SET_PDEATHSIG), so
a crash, a timeout kill or kill -9 of the worker does not leave a server holding a core. `stop()` sends SIGTERM to
the whole group, waits, then SIGKILL. Standard library only: no torch here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# PR_SET_PDEATHSIG = 1; exit at once if the parent is already gone (the race before prctl)
_LAUNCH = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(os.environ['LLMBENCH_SERVE_PARENT']): sys.exit(1)\n"
    "sys.argv = ['transformers'] + sys.argv[1:]\n"
    "from transformers.cli.transformers import main\n"
    "main()\n"
)


class ServerFailed(RuntimeError):
    """The server did not become ready, or died; the message ends with the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ServerSpec:
    model: str  # local folder (or hub id, offline: must be in the cache)
    device: str = "cpu"
    dtype: str | None = None  # e.g. float32, bfloat16; None: the server's default (auto)
    attn_implementation: str | None = None
    continuous_batching: bool = True
    cb_flags: dict[str, Any] = field(default_factory=dict)  # num_blocks -> --cb-num-blocks 64, ...
    extra_args: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    ready_timeout_s: float = 300.0  # CPU imports under load take minutes; a GPU load of a big model too
    stop_timeout_s: float = 15.0
    env: dict[str, str] = field(default_factory=dict)  # e.g. OMP_NUM_THREADS
    cpu_list: str | None = None  # taskset -c LIST for the server

    def argv(self, port: int) -> list[str]:
        args = ["serve", self.model, "--host", self.host, "--port", str(port), "--device", self.device,
                "--log-level", "info"]
        if self.dtype:
            args += ["--dtype", self.dtype]
        if self.attn_implementation:
            args += ["--attn-implementation", self.attn_implementation]
        if self.continuous_batching:
            args.append("--continuous-batching")
        for key, value in self.cb_flags.items():
            flag = "--cb-" + key.replace("_", "-")
            args += ([flag] if value is True else [f"--no-{flag[2:]}"] if value is False else [flag, str(value)])
        return args + list(self.extra_args)


class ServerProcess:
    def __init__(self, spec: ServerSpec, log_path: Path, port: int | None = None):
        self.spec, self.log_path = spec, log_path
        self.port = port or free_port(spec.host)
        self.proc: subprocess.Popen | None = None
        self.ready_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.spec.host}:{self.port}"

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-c", _LAUNCH, *self.spec.argv(self.port)]
        if self.spec.cpu_list:
            cmd = ["taskset", "-c", self.spec.cpu_list, *cmd]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **self.spec.env, "LLMBENCH_SERVE_PARENT": str(os.getpid())}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        return self

    def wait_ready(self) -> float:
        """Poll GET /health until 200; seconds from start. Raises ServerFailed (after stopping it) on death or
        timeout."""
        t0, deadline = time.perf_counter(), time.perf_counter() + self.spec.ready_timeout_s
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise ServerFailed(f"server exited with {code} before it was ready\n{self.log_tail()}")
            if time.perf_counter() > deadline:
                self.stop()
                raise ServerFailed(f"server not ready within {self.spec.ready_timeout_s} s\n{self.log_tail()}")
            if self.health() == 200:
                self.ready_s = time.perf_counter() - t0
                return self.ready_s
            time.sleep(0.25)

    def health(self, timeout_s: float = 2.0) -> int | None:
        """HTTP status of GET /health; None when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=timeout_s) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code  # 503: the CB worker died
        except (OSError, TimeoutError):
            return None

    def get_json(self, path: str, timeout_s: float = 5.0) -> Any:
        return get_json(self.url + path, timeout_s)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM the server's process group, then SIGKILL after stop_timeout_s; its exit code."""
        if self.proc is None:
            return None
        for sig, wait_s in ((signal.SIGTERM, self.spec.stop_timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)  # the group id is the server's pid (start_new_session)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap_group(self.proc.pid)
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return json.loads(r.read())


def _reap_group(pgid: int) -> None:
    """SIGKILL whatever is left in the group (a child the server started and that ignored SIGTERM)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit in the main thread, so `with`/finally blocks stop the server."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
