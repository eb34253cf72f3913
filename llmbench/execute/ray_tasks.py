"""Ray as an executor: each part a Ray generator task (llmbench/execute/task.py's ray_task) with max_calls=1 (a
fresh worker per task: GPU memory freed between groups) and max_retries=0 (a lost task becomes records, it is not
silently rerun). The task streams its part's new lines back; a thread per task writes them into the part here, so
the driver follows Ray's parts exactly as it follows Slurm's and Ray needs no shared filesystem.

Three of Ray's defaults are wrong for a benchmark and are overridden: a loopback address is replaced by the
machine's outward one (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps 127.0.0.1), task workers run 15 nice levels
below the raylet (RAY_worker_niceness=0), and they share the raylet's CFS autogroup (the task starts its child in
a session of its own). Ray tasks end with their driver: there is no --detach on Ray.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from llmbench.config.executor import ExecutorSpec
from llmbench.execute.plans import UsageError
from llmbench.execute.store import read_json
from llmbench.execute.task import WHOLE

FORWARDED = ("HF_HUB_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE", "CUDA_VISIBLE_DEVICES")  # a task runs in the
# raylet's environment, not the driver's: what a measurement depends on is passed on


class RayTasks:
    name = "ray"

    def __init__(self, spec: ExecutorSpec):
        self.spec = spec
        self.refs: dict[int, Any] = {}
        self.cancelled: set[int] = set()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        address = spec.ray.address or os.environ.get("RAY_ADDRESS") or None
        if address is None or address.split(":")[0] in ("127.0.0.1", "localhost"):
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read when ray is imported
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # a local Ray for this run: its files in a temp folder removed at the end (set up before ray is imported:
        # it reads its authentication settings then)
        self.temp = _local_ray_dir() if address is None else None
        try:
            import ray
        except ImportError:
            self.ray = None
            self.close()
            raise UsageError("--executor ray needs ray: pip install 'llmbench[ray]'") from None
        self.ray = ray
        unreachable = _unreachable(address)
        if unreachable:
            self.close()
            raise UsageError(f"--executor ray: nothing answers at {address!r} ({unreachable}); start the cluster "
                             "(ray start --head) or give its address (--ray-address, RAY_ADDRESS)")
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False if address is None else None,
                     _temp_dir=self.temp)
        except Exception as exc:  # noqa: BLE001 - no cluster to run on is the user's to fix, in Ray's words
            self.close()
            raise UsageError(f"--executor ray: ray.init(address={address!r}) failed: {exc}") from None

    def submit(self, run_dir: Path, tasks: list[Any]) -> str:
        from llmbench.execute.task import ray_task

        opts = self.spec.ray
        remote = self.ray.remote(num_cpus=opts.num_cpus, num_gpus=opts.num_gpus, max_calls=1,
                                 max_retries=0)(ray_task)
        env = {k: os.environ[k] for k in FORWARDED if k in os.environ}
        runtime_env = {"env_vars": {"RAY_worker_niceness": "0", **env}}
        job = self.ray.get_runtime_context().get_job_id()
        for t in tasks:
            task_json = read_json(run_dir / t.part, "task.json")
            gen = remote.options(num_returns="streaming", runtime_env=runtime_env).remote(task_json, env)
            self.refs[t.task] = gen
            t.job_id, t.state = f"{job}-{t.task}", "PENDING"  # Ray's job id: this driver
            thread = threading.Thread(target=self._drain, args=(run_dir / t.part, t, gen), daemon=True)
            thread.start()
            self.threads.append(thread)
        return job

    def _drain(self, part: Path, t: Any, gen: Any) -> None:
        """The task's stream into its part; its end (or its exception) into the task's state."""
        try:
            for ref in gen:
                kind, payload = self.ray.get(ref)
                self._write(part, t, kind, payload)
        except Exception as exc:  # noqa: BLE001 - a lost worker or node, or our own cancel, is data
            with self.lock:
                cancelled = t.task in self.cancelled
                t.state = "CANCELLED" if cancelled else "LOST"
                t.reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
                t.final = True

    def _write(self, part: Path, t: Any, kind: str, payload: Any) -> None:
        if kind == "start":
            with self.lock:
                t.state, t.node, t.pid = "RUNNING", payload.get("node"), payload.get("pid")
        elif kind == "exit":
            with self.lock:
                code = payload["returncode"]
                t.state = "CANCELLED" if t.task in self.cancelled else ("COMPLETED" if code == 0 else "FAILED")
                t.exit_code, t.final = str(code), True
        elif kind in WHOLE:
            (part / kind).write_text(payload, encoding="utf-8")
        else:  # new lines of one of the part's files (records last: their timelines come first)
            with open(part / kind, "a", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in payload))

    def poll(self, run_dir: Path, tasks: list[Any]) -> None:
        pass  # the drain threads keep the states

    def cancel(self, tasks: list[Any]) -> None:
        for t in tasks:
            if not t.final and t.task in self.refs:
                with self.lock:
                    self.cancelled.add(t.task)  # ray.cancel races with the task's own end: remember who asked
                self.ray.cancel(self.refs[t.task], force=True)

    def close(self) -> None:
        for thread in self.threads:
            thread.join(timeout=5)
        if self.ray is not None:
            self.ray.shutdown()
        if self.temp is not None:
            import shutil

            shutil.rmtree(self.temp, ignore_errors=True)


CONNECT_TIMEOUT_S = 5.0


def _unreachable(address: str | None) -> str | None:
    """Why nothing listens at a host:port (or ray://host:port) address, within CONNECT_TIMEOUT_S, else None:
    ray.init waits minutes on an address where nothing answers. None for a local Ray, `auto` and `local`."""
    if address is None or address in ("auto", "local") or ":" not in address:
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None


def _local_ray_dir() -> str:
    """A short temp folder (Ray puts unix sockets there: 107 bytes at most) with a token of its own, so the local
    cluster neither writes ~/.ray/auth_token nor runs without authentication."""
    import secrets
    import tempfile

    temp = tempfile.mkdtemp(prefix="lbray-")
    if "RAY_AUTH_MODE" not in os.environ:
        token = Path(temp) / "auth_token"
        token.write_text(secrets.token_hex(32), encoding="utf-8")
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    return temp
