"""One point's calls, whatever the order: its inputs, warm-up and measured calls, the sampler windows they ran in,
and the record made from them. The runner uses it in blocked order (a point's calls one after the other, one
sampler window) and llmbench/measure/round_robin.py in round-robin order (a window per call, merged).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmbench.config.sweep import RunPoint
from llmbench.core.record import RunRecord
from llmbench.measure.faults import active_faults, inject
from llmbench.measure.models import position_overflow
from llmbench.measure.records import error_info, fixed_length_violation, make_record, point_kv_cache_mib, utc_now
from llmbench.measure.timelines import merge_windows

# on_event(kind, point, detail): "load_start", "point_start", "call" (detail = calls done), "round_call" (detail =
# the round; a call of a round-robin group starts), "point_end"
EventHook = Callable[[str, RunPoint, Any], None]


class PointCalls:
    """A point's measurement as it goes. `prepare` builds the call (may raise); `window()`/`close_window()` bracket
    sampler windows; `warm_up`, `measure_once` make calls; `record`/`failed` make the RunRecord."""

    def __init__(self, loaded: Any, point: RunPoint, tools: tuple[Any, Any, Any], emit: EventHook,
                 cold_start: bool = False, peaks: dict[str, Any] | None = None):
        self.loaded, self.point, self.tools, self.emit = loaded, point, tools, emit
        self.warmup: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.windows: list[dict[str, Any]] = []  # each sampler window's stop_point()
        self.measured_s = 0.0
        self.call: tuple[Any, Any, Any] | None = None  # (inputs, generation config, extra call arguments)
        self._open = False
        self.failure: BaseException | None = None  # what a call raised in round-robin order
        self.skip_reason: str | None = None  # set by prepare() for a point past the model's positions
        self.common: dict[str, Any] = {
            "started_at": utc_now(), "device": str(loaded.device), "timer": tools[0].name, "model": loaded.info,
            "torch_threads": _threads(), "load_s": loaded.load_s, "cold_start": cold_start,
            "warmup_calls": self.warmup, "calls": self.calls, "peaks": peaks}

    def prepare(self) -> None:
        """Inputs, generation config and call arguments; the point's injected faults (before its first call)."""
        from llmbench.measure import engine

        loaded, point = self.loaded, self.point
        inputs = engine.build_inputs(loaded, point)
        gen_config = engine.make_generation_config(loaded, point)
        extra = engine.call_kwargs(loaded, point)
        if point.api == "pipeline":
            extra = {"pipeline": engine.make_pipeline_call(loaded, point, inputs)}
        prompt_tokens = [int(n) for n in inputs["attention_mask"].sum(dim=1).tolist()]
        self.common["prompt_tokens_per_sequence"] = prompt_tokens
        self.skip_reason = position_overflow(loaded.model, prompt_tokens, point.max_new_tokens)
        if self.skip_reason is not None:  # past the model's positions: skipped, no call made, no window opened
            return
        self.call = (inputs, gen_config, extra)
        reserve(self.tools[0], point.max_new_tokens)
        modelled_mib = loaded.info["weights_mib"] + (point_kv_cache_mib(point, loaded.info, prompt_tokens) or 0)
        self.window()  # the sampler sees the injected fault's allocation, as it did before windows existed
        inject(point.id, point.batch_size, active_faults(), modelled_mib)

    def window(self) -> None:
        self.tools[2].start_point()
        self._open = True

    def close_window(self, quiet: bool = False) -> None:
        if not self._open:
            return
        self._open = False
        if not quiet:
            self.windows.append(self.tools[2].stop_point())
            return
        try:
            self.windows.append(self.tools[2].stop_point())
        except Exception:  # noqa: BLE001 - after an error, what the sampler had is a bonus, not a need
            pass

    def once(self, seed: int) -> dict[str, Any]:
        clock, hook, _ = self.tools
        return call_once(self.loaded, self.call, clock, hook, seed)

    def warm_up(self) -> None:
        instruments = self.tools[2]
        for i in range(self.point.warmup):
            instruments.call_start("warmup", i)
            self.warmup.append(self.once(self.point.seed + i))
            instruments.call_end("warmup", i)

    @property
    def wants_more(self) -> bool:
        """Measured calls until iterations AND min_duration_s are met, at most max_iterations."""
        p, n = self.point, len(self.calls)
        return n < p.max_iterations and (n < p.iterations or self.measured_s < p.min_duration_s)

    def measure_once(self, round_index: int | None = None) -> None:
        """One measured call (call i uses seed + warmup + i in either order); `round_index` in round-robin order."""
        instruments, i = self.tools[2], len(self.calls)
        instruments.call_start("measured", i)
        result = self.once(self.point.seed + self.point.warmup + i)
        instruments.call_end("measured", i)
        if round_index is not None:
            result["round"] = round_index
        self.calls.append(result)
        self.measured_s += result["e2e_ms"] / 1e3
        self.emit("call", self.point, len(self.calls))

    def record(self) -> RunRecord:
        """The finished point's record (every window closed)."""
        violation = fixed_length_violation(self.point, self.warmup + self.calls)
        status, error = ("error", {"type": "FixedLengthViolation", "message": violation}) if violation else ("ok", None)
        return make_record(self.point, status=status, error=error, sampled=merge_windows(self.windows), **self.common)

    def skipped(self) -> RunRecord:
        """The record of a point prepare() found past the model's positions."""
        return make_record(self.point, status="skipped", started_at=self.common["started_at"],
                           device=self.common["device"], reason=self.skip_reason)

    def fail(self, exc: BaseException) -> None:
        """A call raised: keep the exception for the record, close the window."""
        self.failure = exc
        self.close_window(quiet=True)

    def failed(self, exc: BaseException) -> RunRecord:
        """The record of a point that raised: status oom or error, with the calls measured before it."""
        from llmbench.measure import engine

        self.close_window(quiet=True)
        status = "oom" if engine.is_out_of_memory(exc) else "error"
        sampled = merge_windows(self.windows) if self.windows else None
        return make_record(self.point, status=status, error=error_info(exc), sampled=sampled, **self.common)


def call_once(loaded: Any, call: Any, clock: Any, hook: Any, seed: int) -> dict[str, Any]:
    from llmbench.measure.engine import generate_once, pipeline_once

    inputs, gen_config, extra = call
    if "pipeline" in extra:
        pipe, texts = extra["pipeline"]
        return pipeline_once(loaded, pipe, texts, gen_config, clock, hook, seed)
    return generate_once(loaded, inputs, gen_config, clock, hook, seed, extra)


def reserve(clock: Any, max_new_tokens: int) -> None:
    """Room for a call's step marks on a clock that preallocates (CUDA events)."""
    if hasattr(clock, "reserve"):
        clock.reserve(max_new_tokens + 2)


def _threads() -> int:
    import torch

    return torch.get_num_threads()
