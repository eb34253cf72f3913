"""Counting what speculative decoding did in one generate() call: tokens drafted, accepted, verification steps.

transformers' assisted decoding loop (`GenerationMixin._assisted_decoding`) asks its candidate generator for a
draft (`get_candidates`, returning the input ids with the draft appended), verifies it with one forward pass of
the target, and reports the number of accepted draft tokens back (`update_candidate_strategy(..., num_matches)`),
for every candidate generator alike (an assistant model, prompt lookup). The counts are read there, from
transformers' own numbers, not re-derived from timing: the model's `_get_candidate_generator` is shadowed on the
instance for one call, so the generator it returns is wrapped in a counter that forwards everything else. This is
the one place llmbench touches that internal; `tests/test_speculation.py` checks it on hand-built pairs (a draft
equal to the target accepts every token, a draft that never agrees accepts none).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class DraftCounter:
    """Wraps a transformers CandidateGenerator: counts drafted and accepted tokens and verification steps."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.draft_tokens = 0
        self.accepted_tokens = 0
        self.verification_steps = 0

    def __getattr__(self, name: str) -> Any:  # everything not counted is the generator's own
        return getattr(self._inner, name)

    def get_candidates(self, input_ids: Any, **kwargs: Any) -> Any:
        candidates, logits = self._inner.get_candidates(input_ids, **kwargs)
        self.draft_tokens += int(candidates.shape[1] - input_ids.shape[1])  # (B=1, S + draft) - (B=1, S)
        return candidates, logits

    def update_candidate_strategy(self, input_ids: Any, scores: Any, num_matches: int) -> Any:
        # num_matches: draft tokens the target accepted in this step (after cropping at EOS or the length limit)
        self.accepted_tokens += int(num_matches)
        self.verification_steps += 1
        return self._inner.update_candidate_strategy(input_ids, scores, num_matches)


class Counts:
    """The counts of one call, summed over the candidate generators generate() made (one per call)."""

    def __init__(self) -> None:
        self.counters: list[DraftCounter] = []

    def as_dict(self) -> dict[str, int]:
        return {k: sum(getattr(c, k) for c in self.counters)
                for k in ("draft_tokens", "accepted_tokens", "verification_steps")}


@contextmanager
def counting_drafts(model: Any) -> Iterator[Counts]:
    """For the calls inside the block: every candidate generator `model.generate()` makes is counted."""
    counts = Counts()
    make = model._get_candidate_generator  # the class's method, bound

    def counted(*args: Any, **kwargs: Any) -> DraftCounter:
        counter = DraftCounter(make(*args, **kwargs))
        counts.counters.append(counter)
        return counter

    object.__setattr__(model, "_get_candidate_generator", counted)  # on the instance: nn.Module's setattr not needed
    try:
        yield counts
    finally:
        del model.__dict__["_get_candidate_generator"]


def is_speculative(gen_config: Any, extra: dict[str, Any]) -> bool:
    """Whether generate() will draft and verify: an assistant model, or prompt lookup."""
    return "assistant_model" in extra or getattr(gen_config, "prompt_lookup_num_tokens", None) is not None
