"""Quality of one precision against a reference precision of the same model, computed outside timed regions.

Owns the fixed evaluation sequences (llmbench/measure/data/eval.txt, or seeded random ids for a model without a
tokenizer), the next-token log-probabilities a model gives on them, and the figures comparing two precisions.
torch is imported inside the functions: importing this module imports no torch.

Teacher-forced figures. A position t is a (sequence, index) pair with index < seq_len - 1; N is their count;
p_t and q_t are the reference's and this precision's next-token distributions there (over the model's logits
width V, which may exceed the tokenizer's vocabulary); y_t = sequences[:, 1:] is the actual next token.
    kl_t           = sum_v p_t(v) * (log p_t(v) - log q_t(v))     (nats; a term with p_t(v) = 0 counts 0)
    kl_mean        = (1/N) * sum_t kl_t                            (mean KL(reference || this), nats/position)
    kl_p99         = 99th percentile of kl_t over positions         (linear interpolation between order stats)
    top1_agreement = (1/N) * #{t : argmax_v q_t(v) = argmax_v p_t(v)}
    perplexity     = exp(-(1/N) * sum_t log q_t(y_t))
    ref_perplexity = exp(-(1/N) * sum_t log p_t(y_t))
    positions      = N
kl_t is exactly 0 for identical distributions, +inf where q_t(v) = 0 < p_t(v), NaN if the logits hold NaN.

Greedy-decoding figures, per sequence s: a = reference new tokens, b = this precision's,
L_s = max(|a|, |b|), m_s = #{i < min(|a|, |b|) : a_i = b_i}, k_s = length of the common prefix of a and b.
    token_agreement    = sum_s m_s / sum_s L_s           (positions past the shorter output count as disagreement)
    exact_match_rate   = (1/S) * #{s : a = b}
    common_prefix_mean = (1/S) * sum_s k_s / L_s         (k_s / L_s := 1 when both outputs are empty)
    sequences          = S
With S = 0 all three are NaN; with sum_s L_s = 0 (every output empty, so all equal) token_agreement is 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

EVAL_TEXT_PATH = Path(__file__).parent / "data" / "eval.txt"
FIRST_RANDOM_ID = 3  # ids 0/1/2 are pad/bos/eos in the built-in tiny models: random sequences avoid them
KL_QUANTILE = 0.99


def load_eval_text() -> str:
    """The evaluation text: llmbench/measure/data/eval.txt without its leading '#' header lines."""
    lines = EVAL_TEXT_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines).lstrip("\n")


def eval_sequences(tokenizer: Any, vocab_size: int, n_tokens: int = 1024, seq_len: int = 256,
                   seed: int = 0) -> Any:
    """Fixed token sequences, LongTensor (n_seq, seq_len) with n_seq = n_tokens // seq_len.

    With a tokenizer: the eval text tokenized without special tokens, cut into consecutive windows from
    its start (`seed` unused). With tokenizer None: ids drawn uniformly from [3, vocab_size) by a
    generator seeded with `seed`. Raises ValueError when a window does not fit, the text is too short, or
    a token id is >= vocab_size (the model could not embed it)."""
    import torch

    n_seq = n_tokens // seq_len
    if seq_len < 2 or n_seq < 1:
        raise ValueError(f"need seq_len >= 2 and n_tokens >= seq_len, got n_tokens={n_tokens} seq_len={seq_len}")
    if tokenizer is None:
        if vocab_size <= FIRST_RANDOM_ID:
            raise ValueError(f"vocab_size {vocab_size} leaves no ids >= {FIRST_RANDOM_ID} to draw")
        generator = torch.Generator().manual_seed(seed)
        return torch.randint(FIRST_RANDOM_ID, vocab_size, (n_seq, seq_len), generator=generator)
    # verbose=False: the whole text may exceed model_max_length; we only use n_seq * seq_len tokens of it
    ids = tokenizer(load_eval_text(), add_special_tokens=False, verbose=False)["input_ids"]
    if len(ids) < n_seq * seq_len:
        raise ValueError(f"the eval text has {len(ids)} tokens with this tokenizer; "
                         f"{n_seq} x {seq_len} = {n_seq * seq_len} requested")
    sequences = torch.tensor(ids[: n_seq * seq_len], dtype=torch.long).view(n_seq, seq_len)
    if int(sequences.max()) >= vocab_size:
        raise ValueError(f"token id {int(sequences.max())} >= vocab_size {vocab_size}: tokenizer and model disagree")
    return sequences


def next_token_logprobs(model: Any, sequences: Any, batch_size: int = 4) -> Any:
    """float32 log-softmax of the model's logits at every position but the last, on CPU:
    shape (n_seq, seq_len - 1, V), V = the model's logits width. Computed under no_grad (quanto's int4
    kernels refuse inference_mode) on the
    model's device, `batch_size` sequences per forward pass, no KV cache."""
    import torch

    device = getattr(model, "device", None) or next(model.parameters()).device
    chunks = []
    with torch.no_grad():
        for batch in sequences.split(batch_size):
            batch = batch.to(device)
            logits = model(input_ids=batch, attention_mask=torch.ones_like(batch), use_cache=False).logits
            chunks.append(torch.log_softmax(logits[:, :-1].float(), dim=-1).cpu())
    return torch.cat(chunks)


def compare_distributions(ref_logprobs: Any, logprobs: Any, targets: Any) -> dict[str, float | int]:
    """kl_mean, kl_p99, top1_agreement, perplexity, ref_perplexity, positions (definitions in the module
    docstring). ref_logprobs and logprobs: (n_seq, T, V) from next_token_logprobs; targets: (n_seq, T),
    i.e. sequences[:, 1:]. Works one sequence at a time to bound memory (V can be 150k)."""
    import torch

    if ref_logprobs.shape != logprobs.shape or tuple(targets.shape) != tuple(ref_logprobs.shape[:2]):
        raise ValueError(f"shapes disagree: ref {tuple(ref_logprobs.shape)}, this {tuple(logprobs.shape)}, "
                         f"targets {tuple(targets.shape)}")
    kl, agree, nll, ref_nll = [], [], [], []
    for ref, this, target in zip(ref_logprobs, logprobs, targets, strict=True):  # ref, this: (T, V); target: (T,)
        kl.append(_kl_per_position(ref, this))
        agree.append(this.argmax(dim=-1) == ref.argmax(dim=-1))
        index = target.long().unsqueeze(-1)
        nll.append(-this.gather(-1, index).squeeze(-1).double())
        ref_nll.append(-ref.gather(-1, index).squeeze(-1).double())
    kl_all = torch.cat(kl)
    return {
        "kl_mean": float(kl_all.mean()),
        "kl_p99": float(torch.quantile(kl_all, KL_QUANTILE)),
        "top1_agreement": float(torch.cat(agree).double().mean()),
        "perplexity": math.exp(float(torch.cat(nll).mean())),
        "ref_perplexity": math.exp(float(torch.cat(ref_nll).mean())),
        "positions": int(kl_all.numel()),
    }


def _kl_per_position(ref: Any, this: Any) -> Any:
    """KL(ref || this) per row, (T,) float64 summed from float32 terms, from log-probs (T, V). A term with
    p_ref = 0 is 0, not the NaN that exp(-inf) * (-inf - x) gives (torch.kl_div(log_target=True) gives NaN)."""
    import torch

    terms = torch.exp(ref) * (ref - this)
    return torch.where(ref == float("-inf"), torch.zeros_like(terms), terms).sum(dim=-1, dtype=torch.float64)


def greedy_agreement(ref_tokens: list[list[int]], tokens: list[list[int]]) -> dict[str, float | int]:
    """token_agreement, exact_match_rate, common_prefix_mean, sequences for per-sequence new-token lists
    (definitions and empty cases in the module docstring). Raises ValueError if the sequence counts differ."""
    if len(ref_tokens) != len(tokens):
        raise ValueError(f"{len(ref_tokens)} reference sequences but {len(tokens)} to compare")
    matched = longest = exact = 0
    prefix_fractions = []
    for a, b in zip(ref_tokens, tokens, strict=True):
        a, b = list(a), list(b)
        length = max(len(a), len(b))
        matched += sum(x == y for x, y in zip(a, b, strict=False))
        longest += length
        exact += a == b
        prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        prefix_fractions.append(prefix / length if length else 1.0)
    n = len(tokens)
    return {
        "token_agreement": matched / longest if longest else (1.0 if n else math.nan),
        "exact_match_rate": exact / n if n else math.nan,
        "common_prefix_mean": sum(prefix_fractions) / n if n else math.nan,
        "sequences": n,
    }
