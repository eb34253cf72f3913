"""A streaming OpenAI-completions client on bare asyncio (no HTTP library between the socket and the clock), and
the open- and closed-loop level runner for an endpoint (a `transformers serve` llmbench started, or a `url:`).

Each request opens its own loopback connection, POSTs /v1/completions with stream=true, and timestamps every
server-sent event when the read that completed it returned. Chunks whose text is non-empty are the token
times (an event can carry several tokens, and a token can carry no text, so ITL is per chunk while TPOT uses
usage.completion_tokens). Plain http only: this client is for loopback and trusted hosts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from llmbench.config.arrivals import LevelPlan, PlannedRequest
from llmbench.measure.level_data import LiveLevel, LiveRequest, live_requests


@dataclass(frozen=True)
class EndpointBounds:
    connect_timeout_s: float = 10.0
    first_byte_timeout_s: float = 120.0  # send to the response headers (queueing included)
    stall_timeout_s: float = 30.0  # longest silence between two reads once streaming
    request_timeout_s: float = 600.0  # a whole request
    drain_timeout_s: float = 120.0  # after the last send
    level_timeout_s: float = 1800.0


@dataclass
class StreamResult:
    status: str = "error"  # ok | error | timeout
    error: str | None = None
    chunk_times: list[float] = field(default_factory=list)  # perf_counter of events with text
    end_time: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


class _Stall(Exception):
    pass


async def _read(reader: asyncio.StreamReader, n: int, timeout_s: float) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(n), timeout_s)
    except asyncio.TimeoutError:
        raise _Stall(f"no bytes for {timeout_s} s") from None


def _dechunk(buf: bytes) -> tuple[bytes, bytes, bool]:
    """Chunked transfer coding (hex size CRLF data CRLF ... 0 CRLF CRLF): (complete data, rest, ended)."""
    out = b""
    while True:
        head, sep, rest = buf.partition(b"\r\n")
        if not sep:
            return out, buf, False
        size = int(head.split(b";")[0] or b"0", 16)
        if size == 0:
            return out, b"", True
        if len(rest) < size + 2:
            return out, buf, False
        out, buf = out + rest[:size], rest[size + 2:]


async def _body_chunks(reader: asyncio.StreamReader, chunked: bool, stall_s: float):
    """Yield (bytes, time read) of the response body, de-chunked."""
    buf, ended = b"", False
    while not ended:
        data = await _read(reader, 65536, stall_s)
        now = time.perf_counter()
        if not data:
            return
        if not chunked:
            yield data, now
            continue
        out, buf, ended = _dechunk(buf + data)
        if out:
            yield out, now


def _apply_event(payload: str, res: StreamResult, t: float) -> bool:
    """Fold one SSE data payload into the result; True at the end of the stream ([DONE])."""
    if payload.strip() == "[DONE]":
        return True
    obj = json.loads(payload)
    if "error" in obj:
        res.status, res.error = "error", f"server: {obj['error']}"
        return True
    for choice in obj.get("choices") or []:
        text = choice.get("text") or (choice.get("delta") or {}).get("content")
        if text:
            res.chunk_times.append(t)
        res.finish_reason = choice.get("finish_reason") or res.finish_reason
    usage = obj.get("usage")
    if usage:
        res.prompt_tokens, res.completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return False


async def _read_head(reader: asyncio.StreamReader, timeout_s: float) -> tuple[int, bool]:
    """(HTTP status, chunked?) from the response head."""
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
    except asyncio.TimeoutError:
        raise _Stall(f"no response headers within {timeout_s} s") from None
    lines = raw.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    return int(lines[0].split()[1]), "chunked" in hdrs.get("transfer-encoding", "").lower()


async def _consume(reader: asyncio.StreamReader, code: int, chunked: bool, res: StreamResult, stall_s: float) -> str:
    """Read the body, folding events into res (status 200); the unparsed text (the error body otherwise)."""
    text = ""
    async for data, t in _body_chunks(reader, chunked, stall_s):
        text += data.decode(errors="replace")
        if code != 200:
            continue
        while "\n\n" in text:
            event, text = text.split("\n\n", 1)
            for line in event.splitlines():
                if line.startswith("data:") and _apply_event(line[5:].strip(), res, t):
                    return text
    return text


async def stream_completion(url: str, body: dict[str, Any], bounds: EndpointBounds,
                            headers: dict[str, str] | None = None) -> StreamResult:
    """POST url (…/v1/completions) with stream=true and read the whole event stream."""
    res, parts = StreamResult(), urlsplit(url)
    payload = json.dumps({**body, "stream": True}).encode()
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()) + "\r\n").encode()
    writer = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port or 80), bounds.connect_timeout_s)
        writer.write(head + payload)
        await writer.drain()
        code, chunked = await _read_head(reader, bounds.first_byte_timeout_s)
        rest = await _consume(reader, code, chunked, res, bounds.stall_timeout_s)
        res.end_time = time.perf_counter()
        if code != 200:
            res.status, res.error = "error", f"HTTP {code}: {rest[:300]}"
        elif res.error is None:
            res.status = "ok"
    except _Stall as e:
        res.status, res.error = "timeout", f"stalled: {e}"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
        res.status, res.error = "error", f"{type(e).__name__}: {e}"
    finally:
        if writer is not None:
            writer.close()
    return res


# ---- one level against an endpoint ----

def _store(rec: LiveRequest, res: StreamResult, t0: float) -> None:
    rec.token_times_s = [t - t0 for t in res.chunk_times]
    rec.first_text_s = rec.token_times_s[0] if rec.token_times_s else None  # a chunk is text: TTFT to text
    rec.finished_s = None if res.end_time is None or res.status != "ok" else res.end_time - t0
    rec.received_s = None if res.end_time is None else res.end_time - t0
    rec.prompt_tokens, rec.output_tokens = res.prompt_tokens, res.completion_tokens
    rec.status, rec.error = res.status, res.error  # type: ignore[assignment]


async def _one(url: str, body: dict[str, Any], rec: LiveRequest, t0: float, bounds: EndpointBounds) -> None:
    rec.sent_s = time.perf_counter() - t0
    try:
        res = await asyncio.wait_for(stream_completion(url, body, bounds), bounds.request_timeout_s)
    except asyncio.TimeoutError:
        res = StreamResult(status="timeout", error=f"request exceeded {bounds.request_timeout_s} s",
                           end_time=time.perf_counter())
    _store(rec, res, t0)


def _closed_loop(url: str, plan: LevelPlan, bodies: list[dict[str, Any]], records: list[LiveRequest],
                 t0: float, stop_at: float, bounds: EndpointBounds) -> list[asyncio.Task]:
    requests = iter(plan.requests)

    async def worker() -> None:
        free_at = 0.0
        for r in requests:  # shared iterator: each worker takes the next request when it is free
            if time.perf_counter() >= stop_at:
                return
            records[r.index].arrival_s = free_at
            await _one(url, bodies[r.index], records[r.index], t0, bounds)
            free_at = time.perf_counter() - t0

    return [asyncio.create_task(worker()) for _ in range(int(plan.level))]  # type: ignore[arg-type]


async def _open_loop(url: str, plan: LevelPlan, bodies: list[dict[str, Any]], records: list[LiveRequest],
                     t0: float, deadline: float, bounds: EndpointBounds) -> list[asyncio.Task]:
    tasks = []
    for r in plan.requests:
        target = t0 + r.arrival_s  # type: ignore[operator]
        if target >= deadline:
            break
        await asyncio.sleep(max(0.0, target - time.perf_counter()))
        records[r.index].arrival_s = r.arrival_s
        tasks.append(asyncio.create_task(_one(url, bodies[r.index], records[r.index], t0, bounds)))
    return tasks


async def run_level_async(url: str, plan: LevelPlan, body_for: Callable[[PlannedRequest], dict[str, Any]],
                          bounds: EndpointBounds = EndpointBounds(), start_delay_s: float = 0.05) -> LiveLevel:
    """Send the plan's requests to url on schedule (open loop) or `plan.level` at a time (closed loop)."""
    bodies = [body_for(r) for r in plan.requests]  # before t0
    records = live_requests(plan)
    t0 = time.perf_counter() + start_delay_s
    deadline = t0 + bounds.level_timeout_s
    await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
    if plan.closed_loop:
        stop_at = min(deadline, t0 + plan.duration_s if plan.duration_s is not None else deadline)
        tasks = _closed_loop(url, plan, bodies, records, t0, stop_at, bounds)
        end = deadline  # the workers run the whole level
    else:
        tasks = await _open_loop(url, plan, bodies, records, t0, deadline, bounds)
        end = min(deadline, time.perf_counter() + bounds.drain_timeout_s)
    bound_hit = None
    done, pending = await asyncio.wait(tasks, timeout=max(0.0, end - time.perf_counter())) if tasks else ((), ())
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
        bound_hit = (f"level timeout after {bounds.level_timeout_s} s" if plan.closed_loop
                     else f"drain timeout after {bounds.drain_timeout_s} s")
    for rec in records:
        if rec.sent_s is not None and rec.status == "not_sent":
            rec.status, rec.error = "timeout", bound_hit or "cancelled"
    return LiveLevel(requests=records, wall_s=time.perf_counter() - t0, bound_hit=bound_hit)
