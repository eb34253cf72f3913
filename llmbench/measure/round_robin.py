"""Round-robin order (`order: round_robin`): a model group's measured calls in rounds, so that a burst of noise (another
process taking the core for a second) lands on every point a little instead of on one point entirely.

Each point first makes its warm-up calls, alone, as in blocked order. Then in round k (1, 2, ...) every point that
still wants calls (until `iterations` AND `min_duration_s`, at most `max_iterations`: the same rule as blocked order)
makes one measured call, in an order shuffled per round by a generator seeded from the scenario's seed. A call's
generate() is exactly a blocked call's (same inputs and seed); each call runs in a sampler window of its own and
records its round. A point whose call raises leaves the rounds with the calls it had.
"""

from __future__ import annotations

import random

from llmbench.measure.calls import EventHook, PointCalls


def measure_in_rounds(points: list[PointCalls], seed: int, emit: EventHook) -> int:
    """Measured calls in rounds over `points` (prepared and warmed up, their windows closed) until none wants more;
    returns the number of rounds. `emit("round_call", point, k)` before each call lets the parent know which point
    is in flight (a crash is that point's) and restart its timer."""
    from llmbench.measure import engine

    rng = random.Random(seed)
    k = 0
    while True:
        active = [pc for pc in points if pc.failure is None and pc.wants_more]
        if not active:
            return k
        k += 1
        rng.shuffle(active)
        for pc in active:
            emit("round_call", pc.point, k)
            try:
                pc.window()
                pc.measure_once(round_index=k)
                pc.close_window()
            except Exception as exc:  # noqa: BLE001 - the point fails, the others go on
                pc.fail(exc)
                if engine.is_out_of_memory(exc):
                    engine.empty_caches(pc.loaded.device)

