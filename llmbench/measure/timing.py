"""The Timer seam: marks t0, t1..tN (one per decoding step) and tE for one generate() call.

Two clocks, chosen once from the device by `make_clock`:
- PerfCounterClock (CPU): time.perf_counter_ns() marks.
- CudaEventClock (GPU): one CUDA event per mark, recorded on the current stream; nothing synchronises
  inside generate(); `resolve()` waits for the last event once, after the call.
`StepHook` is a StoppingCriteria that never stops: generate() calls it exactly once per decoding step
(greedy, sampling and beam alike), after that step's tokens are chosen.
"""

from __future__ import annotations

import time
from typing import Any


class PerfCounterClock:
    name = "perf_counter"

    def __init__(self) -> None:
        self._ns: list[int] = []

    def start(self) -> None:
        self._ns = [time.perf_counter_ns()]

    def mark(self) -> None:
        self._ns.append(time.perf_counter_ns())

    def resolve(self) -> list[float]:
        """Marks in ms since t0: [0, t1, ..., tN, tE] (the last one is tE)."""
        t0 = self._ns[0]
        return [(t - t0) / 1e6 for t in self._ns]


class CudaEventClock:
    name = "cuda_event"

    def __init__(self, device: Any, capacity: int = 64):
        import torch

        self._torch = torch
        self._device = device
        self._events: list[Any] = []
        self._used = 0
        self._grow(capacity)

    def _grow(self, n: int) -> None:
        with self._torch.cuda.device(self._device):
            self._events += [self._torch.cuda.Event(enable_timing=True) for _ in range(n)]

    def reserve(self, marks: int) -> None:
        """Pre-create events so no allocation happens inside the timed call."""
        if marks > len(self._events):
            self._grow(marks - len(self._events))

    def start(self) -> None:
        self._used = 0
        self.mark()

    def mark(self) -> None:
        if self._used == len(self._events):  # more steps than reserved (assisted decoding): grow
            self._grow(len(self._events))
        self._events[self._used].record()
        self._used += 1

    def resolve(self) -> list[float]:
        last = self._events[self._used - 1]
        last.synchronize()
        first = self._events[0]
        return [0.0] + [first.elapsed_time(e) for e in self._events[1 : self._used]]


def make_clock(device: Any) -> PerfCounterClock | CudaEventClock:
    """The one place the clock is chosen: CUDA events on a CUDA device, perf_counter otherwise."""
    if getattr(device, "type", str(device).split(":")[0]) == "cuda":
        return CudaEventClock(device)
    return PerfCounterClock()


def make_step_hook(clock: PerfCounterClock | CudaEventClock) -> Any:
    """A StoppingCriteria that records one clock mark per decoding step and never stops generation."""
    import torch
    from transformers import StoppingCriteria

    class StepHook(StoppingCriteria):
        def __init__(self) -> None:
            self._never = torch.zeros(0, dtype=torch.bool)

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            clock.mark()  # first, so the hook's own work falls after the mark
            never = self._never
            if never.shape[0] != input_ids.shape[0] or never.device != input_ids.device:  # new shape: once
                never = self._never = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            return never

    return StepHook()
