"""transformers' continuous batching (ContinuousBatchingManager) behind the load generator's SyncEngine methods
(llmbench/measure/loadgen.py): one manager per load point's settings, primed once, reused for its levels.

Written against transformers 5.24 (checked there) and 5.17 by reading its source (the GPU image): 5.17 lacks
ContinuousBatchingConfig.page_size and auto_switch_to_flash (it always switches to flash when a flash kernel is
installed) and counts free cache in blocks where 5.24 counts sectors.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from llmbench.measure.loadgen import EngineDied, EngineResult

# ContinuousBatchingConfig fields recorded as resolved (those this transformers has)
CB_FIELDS = ("num_blocks", "max_batch_tokens", "max_memory_percent", "max_requests_per_batch", "scheduler_type",
             "allow_block_sharing", "use_cuda_graph", "use_async_batching", "page_size", "block_size",
             "auto_switch_to_flash")
PRIME_TIMEOUT_S = 120.0


def make_cb_config(**settings: Any) -> Any:
    """A ContinuousBatchingConfig with the given fields; one this transformers lacks raises (never dropped
    silently: a scenario axis the library ignores would lie)."""
    from transformers import ContinuousBatchingConfig

    known = {f.name for f in dataclasses.fields(ContinuousBatchingConfig)}
    unknown = sorted(k for k, v in settings.items() if v is not None and k not in known)
    if unknown:
        raise ValueError(f"this transformers' ContinuousBatchingConfig has no {', '.join(unknown)}")
    return ContinuousBatchingConfig(**{k: v for k, v in settings.items() if v is not None})


def cb_settings_for(point_settings: dict[str, Any], attn_implementation: str) -> dict[str, Any]:
    """The scenario's settings, plus auto_switch_to_flash=False (where the field exists) so the attention axis
    holds: by default 5.24 swaps sdpa/eager for a flash kernel when one is installed, saying so only in a log."""
    from transformers import ContinuousBatchingConfig

    out = dict(point_settings)
    known = {f.name for f in dataclasses.fields(ContinuousBatchingConfig)}
    if "auto_switch_to_flash" in known and attn_implementation != "default":
        out["auto_switch_to_flash"] = False
    return out


class CBEngine:
    """One model's continuous-batching manager, started and primed once, reused across load levels."""

    def __init__(self, model: Any, generation_config: Any, cb_config: Any, prime: bool = True):
        self.model = model
        self.manager = model.init_continuous_batching(generation_config=generation_config,
                                                      continuous_batching_config=cb_config)
        self.manager.start()
        if prime:  # the first batch allocates the paged cache's working tensors: keep that out of every level
            self.submit("__prime__", [5] * 8, 2, ignore_eos=True)
            deadline = time.perf_counter() + PRIME_TIMEOUT_S
            while (r := self.next_result(1.0)) is None or r.request_id != "__prime__":
                if time.perf_counter() > deadline:
                    raise EngineDied(f"priming request did not finish within {PRIME_TIMEOUT_S:g} s")

    def submit(self, request_id: str, prompt_ids: list[int], max_new_tokens: int, ignore_eos: bool) -> None:
        # eos_token_id=-1: the request's EOS set is empty, so exactly max_new_tokens come out. min_new_tokens does
        # not work here: continuous batching drops MinNewTokensLengthLogitsProcessor as unsupported.
        rid = self.manager.add_request(prompt_ids, request_id=request_id, max_new_tokens=max_new_tokens,
                                       record_timestamps=True, eos_token_id=-1 if ignore_eos else None)
        if rid is None:
            raise RuntimeError("the manager refused the request (stopping)")

    def next_result(self, timeout_s: float) -> EngineResult | None:
        out = self.manager.get_result(timeout=timeout_s)  # any request's: matching ids here is O(n) per call
        if out is None:
            if not self.manager.is_running():
                fatal = self.manager.background_thread_status.fatal_error
                raise EngineDied(f"generation thread stopped: {fatal!r}")
            return None
        if not out.is_finished():
            return None  # a streaming partial (never requested here)
        start, end = out.lifespan
        return EngineResult(
            request_id=out.request_id, scheduled_at=start if start > 0 else None,
            token_times=list(out.timestamps or []), finished_at=end if end > 0 else None,
            prompt_tokens=len(out.prompt_ids), output_tokens=len(out.generated_tokens),
            ok=out.error is None and out.status.name == "FINISHED", error=out.error,
            token_ids=list(out.generated_tokens))

    def cancel(self, request_id: str) -> None:
        if self.manager.is_running():
            self.manager.cancel_request(request_id)

    def sample(self) -> tuple[int | None, int | None, int | None, int | None] | None:
        """(waiting, active, kv used, kv total), read without locks from the collector thread: len() of a dict or
        a list is atomic in CPython, so each number is one the engine really had, though not all at one instant."""
        bp = self.manager.batch_processor
        if bp is None:
            return None
        waiting = self.manager.input_queue.qsize() + len(bp.scheduler.waiting_requests)
        cache = bp.cache
        if hasattr(cache, "pool"):  # 5.24: sectors
            total, free = cache.num_sectors, cache.pool.num_free_sectors
        elif hasattr(cache, "get_num_free_blocks"):  # 5.17: blocks
            total, free = cache.num_blocks, cache.get_num_free_blocks()
        else:
            total = free = None
        return waiting, len(bp.scheduler.active_requests), None if total is None else total - free, total

    @property
    def kv_unit(self) -> str | None:
        cache = getattr(self.manager.batch_processor, "cache", None)
        return "sectors" if hasattr(cache, "pool") else "blocks" if cache is not None else None

    def facts(self) -> dict[str, Any]:
        """What the engine really ran with, after transformers resolved its defaults."""
        import transformers

        cfg = self.manager.continuous_batching_config
        resolved = {k: getattr(cfg, k) for k in CB_FIELDS if hasattr(cfg, k)}
        if isinstance(resolved.get("use_cuda_graph"), tuple):
            resolved["use_cuda_graph"] = list(resolved["use_cuda_graph"])
        return {"transformers": transformers.__version__,
                "attn_implementation": self.model.config._attn_implementation, "cb_config": resolved}

    def stop(self, timeout_s: float = 30.0) -> None:
        self.manager.stop(block=True, timeout=timeout_s)
