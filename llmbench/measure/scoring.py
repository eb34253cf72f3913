"""Quality scoring in a worker (llmbench/measure/quality.py has the arithmetic): each precision of one model
loaded in turn, the reference first, and scored against it on the shipped evaluation text and the benchmark's
prompts, outside any timed call. One plain dict per precision, written to quality.jsonl by the parent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from llmbench.core.precisions import unavailable_reason
from llmbench.measure.records import error_info, utc_now


def run_quality(job: Any, device: Any) -> Iterator[dict[str, Any]]:
    """Quality of each of the job's precisions against its reference (llmbench/measure/quality.py), one dict per
    precision, the reference first. Loads each precision once more, after or beside the timed sweep."""
    from llmbench.measure import engine

    reference = job.reference if job.reference != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    ref: dict[str, Any] = {}
    for precision in [reference] + [p for p in job.precisions if p != reference]:
        base = {"model": job.model.label, "precision": precision, "reference": reference, "started_at": utc_now()}
        reason = unavailable_reason(precision, device.type)
        if reason is None and precision != reference and not ref:
            reason = f"the reference precision {reference} could not be scored"
        if reason is not None:
            yield {**base, "status": "skipped", "reason": reason}
            continue
        loaded = None
        try:
            loaded = engine.load_model(job.model, precision, device)
            yield {**base, "status": "ok", **_score(loaded, job, ref)}
        except Exception as exc:  # noqa: BLE001 - quality is data too: a failure is recorded, the sweep goes on
            yield {**base, "status": "oom" if engine.is_out_of_memory(exc) else "error", "error": error_info(exc)}
        finally:
            if loaded is not None:
                engine.release(loaded)


def _score(loaded: Any, job: Any, ref: dict[str, Any]) -> dict[str, Any]:
    """Fills `ref` on the reference's turn; compares against it on every other."""
    import dataclasses

    from llmbench.measure import engine, quality

    q = job.quality
    sequences = quality.eval_sequences(loaded.tokenizer, loaded.info["vocab_size"], q.tokens, q.seq_len)
    logprobs = quality.next_token_logprobs(loaded.model, sequences)
    point = dataclasses.replace(job.prompt_point, max_new_tokens=q.greedy_new_tokens, fixed_length=True,
                                decoding=_greedy(), batch_size=min(job.prompt_point.batch_size, 4),
                                stop_strings=[], max_time_s=None, cache_implementation="dynamic")
    inputs = engine.build_inputs(loaded, point)
    with _inference():
        out = loaded.model.generate(**inputs, generation_config=engine.make_generation_config(loaded, point))
    greedy = out[:, inputs["input_ids"].shape[1]:].tolist()
    if not ref:
        ref.update(logprobs=logprobs, greedy=greedy)
    scores = quality.compare_distributions(ref["logprobs"], logprobs, sequences[:, 1:])
    scores.update({f"greedy_{k}": v for k, v in quality.greedy_agreement(ref["greedy"], greedy).items()})
    scores["eval_text"] = loaded.tokenizer is not None
    return scores


def _greedy() -> Any:
    from llmbench.config.decoding import Greedy

    return Greedy()


def _inference() -> Any:
    import torch

    return torch.no_grad()  # not inference_mode: quanto int4 kernels refuse inference tensors
