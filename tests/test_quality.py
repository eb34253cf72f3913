"""Quality figures: hand-computed values on tiny distributions, greedy agreement cases, the fixed eval
sequences, and one real fp32-vs-bf16 comparison on the built-in tiny-llama."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from llmbench.measure import quality

torch = pytest.importorskip("torch")


def logs(*rows: list[float]) -> torch.Tensor:
    """Log-probs (1, T, V) from probability rows: one sequence of T positions."""
    return torch.tensor([rows], dtype=torch.float32).log()


# ---- compare_distributions on two-token vocabularies ----

REF = logs([0.6, 0.4], [0.9, 0.1])
THIS = logs([0.3, 0.7], [0.9, 0.1])
TARGETS = torch.tensor([[0, 1]])
KL_FIRST = 0.6 * math.log(0.6 / 0.3) + 0.4 * math.log(0.4 / 0.7)  # 0.19204...; second position: 0


def test_kl_mean_and_p99_by_hand() -> None:
    got = quality.compare_distributions(REF, THIS, TARGETS)
    assert got["kl_mean"] == pytest.approx(KL_FIRST / 2, rel=1e-6)
    # two values [0, KL_FIRST]: the 99th percentile interpolates 99% of the way from 0 to KL_FIRST
    assert got["kl_p99"] == pytest.approx(0.99 * KL_FIRST, rel=1e-6)
    assert got["positions"] == 2


def test_top1_agreement_counts_argmax_changes() -> None:
    # position 0: argmax 0 under the reference, 1 under this precision; position 1: both 0
    assert quality.compare_distributions(REF, THIS, TARGETS)["top1_agreement"] == 0.5


def test_perplexities_by_hand() -> None:
    got = quality.compare_distributions(REF, THIS, TARGETS)
    assert got["perplexity"] == pytest.approx(1 / math.sqrt(0.3 * 0.1), rel=1e-6)  # targets 0 then 1
    assert got["ref_perplexity"] == pytest.approx(1 / math.sqrt(0.6 * 0.1), rel=1e-6)


def test_identical_distributions_give_exactly_zero_kl() -> None:
    lp = torch.log_softmax(torch.randn(3, 5, 11, generator=torch.Generator().manual_seed(0)), dim=-1)
    targets = torch.randint(0, 11, (3, 5), generator=torch.Generator().manual_seed(1))
    got = quality.compare_distributions(lp, lp.clone(), targets)
    assert got["kl_mean"] == 0.0 and got["kl_p99"] == 0.0
    assert got["top1_agreement"] == 1.0
    assert got["perplexity"] == got["ref_perplexity"]
    assert got["positions"] == 15


def test_uniform_distribution_has_perplexity_vocab_size() -> None:
    vocab = 7
    lp = torch.full((2, 3, vocab), -math.log(vocab))
    got = quality.compare_distributions(lp, lp, torch.tensor([[0, 3, 6], [1, 1, 2]]))
    assert got["perplexity"] == pytest.approx(vocab, rel=1e-6)


def test_zero_probabilities_are_safe() -> None:
    certain = torch.tensor([[[0.0, -math.inf]]])  # p = [1, 0]
    half = logs([0.5, 0.5])
    # the p = 0 term counts 0 (torch.kl_div(log_target=True) would give NaN here)
    assert quality.compare_distributions(certain, half, torch.tensor([[0]]))["kl_mean"] == pytest.approx(math.log(2))
    assert quality.compare_distributions(certain, certain, torch.tensor([[0]]))["kl_mean"] == 0.0
    # this precision gives 0 where the reference does not: KL is infinite, not NaN
    assert quality.compare_distributions(half, certain, torch.tensor([[0]]))["kl_mean"] == math.inf


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shapes disagree"):
        quality.compare_distributions(REF, THIS[:, :1], TARGETS)
    with pytest.raises(ValueError, match="shapes disagree"):
        quality.compare_distributions(REF, THIS, TARGETS[:, :1])


# ---- greedy_agreement ----

@pytest.mark.parametrize("ref, this, expected", [
    ([[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5]], (1.0, 1.0, 1.0)),
    ([[1, 2, 3, 4]], [[1, 2, 9, 4]], (3 / 4, 0.0, 2 / 4)),         # a later match still counts as a token
    ([[1, 2, 3, 4]], [[1, 2]], (2 / 4, 0.0, 2 / 4)),               # stopped early: the rest disagrees
    ([[1, 2, 3, 4], [5, 6]], [[1, 2, 9, 4], [5, 6]], (5 / 6, 0.5, (2 / 4 + 1) / 2)),
    ([[7]], [[8]], (0.0, 0.0, 0.0)),
    ([[]], [[]], (1.0, 1.0, 1.0)),                                 # both empty: they agree
    ([[]], [[1]], (0.0, 0.0, 0.0)),
])
def test_greedy_agreement(ref: list, this: list, expected: tuple) -> None:
    got = quality.greedy_agreement(ref, this)
    assert (got["token_agreement"], got["exact_match_rate"], got["common_prefix_mean"]) == pytest.approx(expected)
    assert got["sequences"] == len(ref)


def test_greedy_agreement_edge_cases() -> None:
    got = quality.greedy_agreement([], [])
    assert got["sequences"] == 0 and all(math.isnan(got[k]) for k in
                                         ("token_agreement", "exact_match_rate", "common_prefix_mean"))
    with pytest.raises(ValueError):
        quality.greedy_agreement([[1]], [[1], [2]])


# ---- eval text and sequences ----

def test_import_does_not_import_torch() -> None:
    code = "import sys, llmbench.measure.quality; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_eval_text_skips_header() -> None:
    text = quality.load_eval_text()
    assert text.startswith("Chapter 1\n") and "\n#" not in text
    assert len(text.encode()) > 12_000


def test_random_sequences_shape_range_and_seed() -> None:
    seq = quality.eval_sequences(None, vocab_size=50, n_tokens=1000, seq_len=256, seed=3)
    assert seq.shape == (3, 256) and seq.dtype == torch.long
    assert int(seq.min()) >= 3 and int(seq.max()) < 50
    assert torch.equal(seq, quality.eval_sequences(None, 50, 1000, 256, seed=3))
    assert not torch.equal(seq, quality.eval_sequences(None, 50, 1000, 256, seed=4))
    with pytest.raises(ValueError):
        quality.eval_sequences(None, 50, n_tokens=100, seq_len=256)


@pytest.fixture(scope="module")
def tiny() -> dict:
    """tiny-llama (random weights, vocab 2048) in fp32 and bf16, with its tokenizer (vocab 981)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmbench.measure import tinymodels

    path = tinymodels.materialize("tiny-llama")
    load = lambda dtype: AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()  # noqa: E731
    return {"tokenizer": AutoTokenizer.from_pretrained(path), "fp32": load(torch.float32),
            "bf16": load(torch.bfloat16)}


def test_text_sequences_are_consecutive_windows(tiny: dict) -> None:
    tok = tiny["tokenizer"]
    seq = quality.eval_sequences(tok, vocab_size=2048, n_tokens=600, seq_len=200)
    ids = tok(quality.load_eval_text(), add_special_tokens=False)["input_ids"]
    assert seq.shape == (3, 200)
    assert seq.flatten().tolist() == ids[:600]
    assert torch.equal(seq, quality.eval_sequences(tok, 2048, 600, 200))
    with pytest.raises(ValueError, match="vocab_size"):
        quality.eval_sequences(tok, vocab_size=100, n_tokens=600, seq_len=200)
    with pytest.raises(ValueError, match="tokens with this tokenizer"):
        quality.eval_sequences(tok, vocab_size=2048, n_tokens=10_000_000, seq_len=200)


def test_bf16_against_fp32_on_tiny_llama(tiny: dict) -> None:
    seq = quality.eval_sequences(tiny["tokenizer"], tiny["fp32"].config.vocab_size, n_tokens=1024, seq_len=256)
    ref = quality.next_token_logprobs(tiny["fp32"], seq)
    assert ref.shape == (4, 255, 2048) and ref.dtype == torch.float32  # the model's width, not the tokenizer's
    assert torch.equal(quality.next_token_logprobs(tiny["fp32"], seq, batch_size=3), ref)

    same = quality.compare_distributions(ref, quality.next_token_logprobs(tiny["fp32"], seq), seq[:, 1:])
    assert same["kl_mean"] == 0.0 and same["top1_agreement"] == 1.0

    got = quality.compare_distributions(ref, quality.next_token_logprobs(tiny["bf16"], seq), seq[:, 1:])
    # random weights give near-uniform distributions: bf16 rounding moves them a little (measured ~4e-6)
    assert 0 < got["kl_mean"] < 1e-3 and got["kl_p99"] >= got["kl_mean"]
    assert got["top1_agreement"] > 0.9
    assert got["positions"] == 4 * 255
    assert got["ref_perplexity"] == pytest.approx(same["ref_perplexity"])
