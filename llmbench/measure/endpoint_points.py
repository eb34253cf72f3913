"""Load points against an OpenAI-compatible endpoint, from the worker: a `transformers serve` that llmbench starts on
127.0.0.1 with the point's model, precision, attention and continuous-batching settings (engine serve), or a server
that is already running (engine url). The same plan as in process, sent as streaming /v1/completions requests;
TTFT and ITL measured client-side from the stream (docs/serving.md). The worker loads no model of its own here:
only the tokenizer, to build prompts of the planned lengths.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from llmbench.config.arrivals import LevelPlan, PlannedRequest, plan_level
from llmbench.config.feasibility import skip_reason
from llmbench.config.sweep import Group, RunPoint
from llmbench.core.precisions import PRECISIONS
from llmbench.core.record import RunRecord, summarize_requests
from llmbench.measure.load_points import level_part, level_status
from llmbench.measure.machine_load import MachineLoad
from llmbench.measure.records import error_info, make_record, utc_now
from llmbench.measure.serve_process import ServerProcess, ServerSpec, get_json
from llmbench.measure.sse_client import EndpointBounds, run_level_async, stream_completion

EventHook = Callable[[str, RunPoint, Any], None]
SERVE_FLAGS = ("num_blocks", "max_batch_tokens", "max_memory_percent", "use_cuda_graph")  # transformers serve's --cb-*


class Endpoints:
    """The group's server for the current settings (engine serve: started here, a new one when the settings
    change; engine url: the running one) and what it said about itself."""

    def __init__(self, group: Group, tokenizer: Any, model_path: str, device_type: str):
        self.group, self.tokenizer, self.model_path, self.device_type = group, tokenizer, model_path, device_type
        self.key: Any = None
        self.server: ServerProcess | None = None
        self.url: str | None = None
        self.facts: dict[str, Any] = {}
        self._logs = tempfile.TemporaryDirectory(prefix="llmbench-serve-")  # removed at close

    def get(self, point: RunPoint) -> str:
        key = (point.engine, tuple(sorted(point.cb_settings.items())), point.decoding.label)
        if key == self.key and (point.engine == "url" or (self.server and self.server.alive())):
            return self.url
        self.stop()
        self.key = key
        if point.engine == "url":
            self.url = point.load.url.rstrip("/")
            self.facts = {"url": self.url, "server_kind": point.load.server_kind,
                          "models": _quietly(lambda: get_json(self.url + "/v1/models"))}
        else:
            self._start(point)
        self.facts["priming"] = self._prime(point)
        return self.url

    def _start(self, point: RunPoint) -> None:
        spec = ServerSpec(
            model=self.model_path, device=self.device_type, dtype=PRECISIONS[point.precision].dtype,
            attn_implementation=None if point.attn_implementation == "default" else point.attn_implementation,
            cb_flags={k: v for k, v in point.cb_settings.items() if k in SERVE_FLAGS},
            ready_timeout_s=point.load.bounds.ready_timeout_s, stop_timeout_s=point.load.bounds.stop_timeout_s,
            env={"OMP_NUM_THREADS": str(point.cpu_threads)} if point.cpu_threads else {})
        self.server = ServerProcess(spec, Path(self._logs.name) / "serve.log")
        t0 = time.perf_counter()
        self.server.start()
        self.server.wait_ready()  # ServerFailed (after stopping it) when it dies or is not ready in time
        self.url = self.server.url
        self.facts = {"server_argv": spec.argv(self.server.port), "ready_s": round(self.server.ready_s, 2),
                      "started_s": round(time.perf_counter() - t0, 2),
                      "models": _quietly(lambda: self.server.get_json("/v1/models"))}

    def _prime(self, point: RunPoint) -> dict[str, Any]:
        """One request before measuring: transformers serve creates its continuous-batching manager on the first
        request, which also fixes the sampling settings for every later one."""
        body = request_body(point, "hello", 4)
        res = asyncio.run(stream_completion(self.url + "/v1/completions", body, EndpointBounds(request_timeout_s=120)))
        return {"status": res.status, "error": res.error}

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            self.facts["server_exit"] = server.stop()
            self.facts["server_log_tail"] = server.log_tail(20)

    def close(self) -> None:
        self.stop()
        self._logs.cleanup()


def request_body(point: RunPoint, text: str, n_out: int) -> dict[str, Any]:
    """The /v1/completions body: a fixed length the way the server kind accepts it (transformers serve refuses
    ignore_eos and min_tokens with 422, and takes a whole GenerationConfig as a JSON string)."""
    load, sampling = point.load, point.decoding.generate_kwargs()
    body: dict[str, Any] = {"prompt": text, "max_tokens": n_out}
    kind = load.server_kind if point.engine == "url" else "transformers"
    if kind == "transformers":
        config = {"max_new_tokens": n_out, **sampling, **({"eos_token_id": -1} if load.ignore_eos else {})}
        body["generation_config"] = json.dumps(config)
        return body
    body["temperature"] = sampling.get("temperature", 1.0) if sampling.get("do_sample") else 0.0
    if kind == "vllm" and load.ignore_eos:
        body.update(ignore_eos=True, min_tokens=n_out)
    return body


def prompt_text(tokenizer: Any, n_tokens: int, rng: random.Random) -> str:
    """Text that this tokenizer encodes (special tokens included, as the server does) to n_tokens tokens, when a few
    rounds of decode and re-encode reach it; otherwise the closest found (usage.prompt_tokens is recorded)."""
    specials = len(tokenizer("").input_ids)
    lo, hi = 3, tokenizer.vocab_size
    ids = [rng.randrange(lo, hi) for _ in range(max(1, n_tokens - specials))]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    for _ in range(20):
        got = len(tokenizer(text).input_ids)
        if got == n_tokens:
            break
        ids = tokenizer(text, add_special_tokens=False).input_ids
        ids = ids[: n_tokens - specials - (got > n_tokens + 1)] if got > n_tokens else ids + [rng.randrange(lo, hi)]
        text = tokenizer.decode(ids, skip_special_tokens=True)
    return text


def run_endpoint_group(group: Group, device: Any, emit: EventHook) -> Iterator[RunRecord]:
    """Every load point of a group whose engine is serve or url; the server is stopped on every way out."""
    from transformers import AutoTokenizer

    from llmbench.measure.models import model_source

    path = model_source(group.model.id)
    emit("load_start", group.points[0], group.id)
    endpoints = None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=group.model.revision)
        endpoints = Endpoints(group, tokenizer, path, getattr(device, "type", str(device)))
        for point in group.points:
            emit("point_start", point, None)
            reason = skip_reason(point, endpoints.device_type)
            record = make_record(point, status="skipped", started_at=utc_now(), device=endpoints.device_type,
                                 reason=reason) if reason else measure_endpoint_level(point, endpoints)
            yield record
            emit("point_end", point, record.status)
    finally:
        if endpoints is not None:
            endpoints.close()


def measure_endpoint_level(point: RunPoint, endpoints: Endpoints) -> RunRecord:
    load = point.load
    common = {"started_at": utc_now(), "device": endpoints.device_type, "timer": "perf_counter (client)"}
    try:
        url = endpoints.get(point)
        plan = plan_level(load, point.load_level, load.seed if load.seed is not None else point.seed)
        bounds = EndpointBounds(stall_timeout_s=load.bounds.stall_timeout_s,
                                request_timeout_s=load.bounds.request_timeout_s,
                                drain_timeout_s=load.bounds.drain_timeout_s,
                                level_timeout_s=min(load.bounds.level_timeout_s, point.point_timeout_s - 30))
        body_for = _bodies(point, plan, endpoints.tokenizer)
        with MachineLoad([os.getpid()]) as machine:  # the server is our child: its CPU counts as ours
            live = asyncio.run(run_level_async(url + "/v1/completions", plan, body_for, bounds))
        if endpoints.server is not None:
            live.facts["health_after"] = endpoints.server.health()
        level = level_part(point, plan, live, dict(endpoints.facts), machine.to_dict())
    except Exception as exc:  # noqa: BLE001 - a server that fails to start or dies is data; the sweep goes on
        endpoints.stop()
        return make_record(point, status="error", error=error_info(exc), **common)
    status, error = level_status(level)
    record = make_record(point, status=status, error=error, **common)
    record.load = level
    record.summary.update(summarize_requests(level))
    return record


def _bodies(point: RunPoint, plan: LevelPlan, tokenizer: Any) -> Callable[[PlannedRequest], dict[str, Any]]:
    """Request bodies: text the tokenizer encodes to the planned length (seeded random ids), or the same passages
    of the shipped English text the in-process engine sends (prompts: text), decoded."""
    passage = None
    if point.load.prompts == "text":
        from llmbench.measure.load_points import text_prompts

        passage = text_prompts(tokenizer, plan)

    def body_for(r: PlannedRequest) -> dict[str, Any]:
        if passage is not None:
            return request_body(point, tokenizer.decode(passage(r), skip_special_tokens=True), r.output_tokens)
        rng = random.Random(f"{plan.seed}/{plan.level}/prompt_text/{r.index}")
        return request_body(point, prompt_text(tokenizer, r.prompt_tokens, rng), r.output_tokens)
    return body_for


def _quietly(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - what a server says about itself is a bonus
        return {"error": f"{type(exc).__name__}: {exc}"}
