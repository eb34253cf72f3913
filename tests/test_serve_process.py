"""A real `transformers serve` on loopback (llmbench/measure/serve_process.py, sse_client.py, endpoint_points.py):
start, ready, /v1/models, a level through the client, a url: load point through the runner, fixed output length, a
422 as data, a crash mid-run, a readiness timeout, death before ready, SIGINT/SIGTERM to the benchmark and a killed
parent. Slow: each start imports torch, transformers and fastapi (tens of seconds on a busy machine)."""
import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from llmbench.config.arrivals import plan_level
from llmbench.config.load import Lengths, Load
from llmbench.measure.serve_process import ServerFailed, ServerProcess, ServerSpec
from llmbench.measure.sse_client import EndpointBounds, run_level_async

pytestmark = [pytest.mark.slow, pytest.mark.skipif(importlib.util.find_spec("fastapi") is None,
                                                    reason="needs the serving extra")]


def gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return False
    except ProcessLookupError:
        return True


def wait_gone(pid: int, timeout_s: float = 30.0) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if gone(pid):
            return True
        time.sleep(0.2)
    return gone(pid)


@pytest.fixture(scope="module")
def tiny_llama() -> str:
    from llmbench.measure import tinymodels

    return str(tinymodels.materialize("tiny-llama"))


def spec(model: str, **kw) -> ServerSpec:
    return ServerSpec(model=model, cb_flags={"num_blocks": 32, "max_batch_tokens": 256},
                      env={"OMP_NUM_THREADS": "1"}, **kw)


@pytest.fixture(scope="module")
def server(tiny_llama, tmp_path_factory):
    srv = ServerProcess(spec(tiny_llama, ready_timeout_s=600), tmp_path_factory.mktemp("serve") / "serve.log")
    with srv:
        yield srv
    assert wait_gone(srv.proc.pid)


def body(n_out: int) -> dict:
    gen = {"max_new_tokens": n_out, "eos_token_id": -1, "do_sample": True, "temperature": 1.0}
    return {"prompt": "the quick brown fox", "max_tokens": n_out, "generation_config": json.dumps(gen)}


def test_ready_health_and_models(server, tiny_llama):
    assert server.alive() and server.health() == 200 and server.ready_s > 0
    models = server.get_json("/v1/models")["data"]
    assert [m["id"] for m in models] == [tiny_llama] and models[0]["status"]["value"] == "loaded"


def test_url_run_gets_every_token(server):
    plan = plan_level(Load(process="constant", rate_per_s=[4.0], requests=6, warmup_requests=1,
                           output_tokens=Lengths(value=12)), 4.0, 0)
    level = asyncio.run(run_level_async(server.url + "/v1/completions", plan, lambda r: body(r.output_tokens)))
    assert level.bound_hit is None and [r.status for r in level.requests] == ["ok"] * 6
    for r in level.requests:
        assert r.output_tokens == 12  # eos_token_id -1: the fixed length holds
        assert r.token_times_s and r.sent_s < r.token_times_s[0] <= r.finished_s


def test_unknown_field_is_a_recorded_error(server):
    plan = plan_level(Load(process="constant", rate_per_s=[10.0], requests=1), 10.0, 0)
    level = asyncio.run(run_level_async(server.url + "/v1/completions", plan,
                                        lambda r: {"prompt": "x", "max_tokens": 2, "ignore_eos": True}))
    assert level.requests[0].status == "error" and "HTTP 422" in level.requests[0].error


URL_SCENARIO = """
name: url
models: [tiny-llama]
device: cpu
decoding: [{{strategy: sampling, temperature: 1.0}}]
load:
  engine: url
  url: {url}
  process: constant
  rate_per_s: [4]
  requests: 6
  warmup_requests: 1
  prompt_tokens: 16
  output_tokens: 8
  slo: {{ttft_ms: 60000}}
"""


def test_a_url_load_point_through_the_runner(server, tmp_path):
    from llmbench.config.loading import load_scenario
    from llmbench.config.sweep import expand_sweep
    from llmbench.measure.runner import run_points

    path = tmp_path / "url.yaml"
    path.write_text(URL_SCENARIO.format(url=server.url))
    (record,) = run_points(expand_sweep(load_scenario(path)), "cpu")
    assert record.status == "ok", record.error
    assert record.point.engine == "url" and record.load.facts["priming"]["status"] == "ok"
    assert record.load.facts["models"]["data"][0]["status"]["value"] == "loaded"
    assert [r.status for r in record.load.requests] == ["ok"] * 6
    assert all(r.output_tokens == 8 and r.prompt_tokens == 16 for r in record.load.requests)
    assert record.load.figures.ok_requests == 5 and record.stat("request_ttft_ms", "median") > 0
    assert record.summary.get("request_queue_ms") is None  # an endpoint cannot see its queue


def test_crash_mid_run_is_recorded_and_bounded(server):
    # last test on the shared server: kill -9 it while a level runs
    plan = plan_level(Load(process="constant", rate_per_s=[5.0], requests=10, output_tokens=Lengths(value=200)), 5.0, 0)

    async def run_and_kill():
        task = asyncio.create_task(run_level_async(server.url + "/v1/completions", plan,
                                                   lambda r: body(r.output_tokens),
                                                   EndpointBounds(stall_timeout_s=10, drain_timeout_s=30)))
        await asyncio.sleep(0.8)
        os.kill(server.proc.pid, signal.SIGKILL)
        return await task

    t = time.perf_counter()
    level = asyncio.run(run_and_kill())
    assert time.perf_counter() - t < 60
    statuses = [r.status for r in level.requests]
    assert "error" in statuses and set(statuses) <= {"ok", "error", "timeout"}
    assert not server.alive() and server.health() is None


def test_readiness_timeout_stops_the_server(tiny_llama, tmp_path):
    srv = ServerProcess(spec(tiny_llama, ready_timeout_s=1.0), tmp_path / "serve.log")
    with pytest.raises(ServerFailed, match="not ready within 1.0 s"):
        with srv:
            pass
    assert wait_gone(srv.proc.pid, 20)


def test_death_before_ready_says_so(tmp_path):
    srv = ServerProcess(spec(str(tmp_path / "no-such-model"), ready_timeout_s=600), tmp_path / "serve.log")
    with pytest.raises(ServerFailed, match="exited with"):
        with srv:
            pass
    assert gone(srv.proc.pid)


CHILD = """
import sys, time
from pathlib import Path
from llmbench.measure.serve_process import ServerProcess, ServerSpec, exit_on_sigterm
exit_on_sigterm()
srv = ServerProcess(ServerSpec(model={model!r}, ready_timeout_s=600), Path({log!r}))
{body}
"""


def child(tiny_llama, tmp_path, body):
    code = CHILD.format(model=tiny_llama, log=str(tmp_path / "serve.log"), body=body)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    server_pid = int(proc.stdout.readline())
    return proc, server_pid


@pytest.mark.parametrize("how", ["sigint", "sigterm"])
def test_interrupting_the_benchmark_stops_the_server(tiny_llama, tmp_path, how):
    body = ("srv.start()\nprint(srv.proc.pid, flush=True)\ntry:\n    srv.wait_ready()\n    time.sleep(600)\n"
            "finally:\n    srv.stop()")
    proc, server_pid = child(tiny_llama, tmp_path, body)
    time.sleep(2)
    proc.send_signal(signal.SIGINT if how == "sigint" else signal.SIGTERM)
    proc.wait(timeout=60)
    assert wait_gone(server_pid, 30)


def test_killed_benchmark_takes_the_server_down(tiny_llama, tmp_path):
    proc, server_pid = child(tiny_llama, tmp_path, "srv.start()\nprint(srv.proc.pid, flush=True)\ntime.sleep(600)")
    time.sleep(2)
    proc.kill()  # SIGKILL: no cleanup code runs in the parent; PR_SET_PDEATHSIG does the work
    proc.wait(timeout=10)
    assert wait_gone(server_pid, 60)
