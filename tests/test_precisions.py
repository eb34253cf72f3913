"""The precision table end to end on a CPU: every quantizer that runs here, stored sizes from the real
tensors, quality against the fp32 reference joined to each record."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmbench.analysis.results import load
from llmbench.execute.store import read_quality

pytest.importorskip("bitsandbytes")
pytest.importorskip("optimum.quanto")
pytestmark = pytest.mark.slow  # a quantized sweep in a subprocess: minutes on a 2-core CPU

SWEEP = """
name: precisions
models: [tiny-llama]
precision: [fp32, bf16, int8, int4, int4-fp4, int8-quanto]
batch_size: 2
prompt: {input_tokens: 16}
max_new_tokens: 6
decoding:
  - greedy
  - {strategy: sampling, temperature: 0.8}
  - {strategy: beam, num_beams: 2}
warmup: 1
iterations: 2
min_duration_s: 0
device: cpu
cpu_threads: 1
quality: {tokens: 512, seq_len: 128, greedy_new_tokens: 8}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("precisions")
    path = out / "s.yaml"
    path.write_text(SWEEP)
    proc = subprocess.run([sys.executable, "-m", "llmbench", "run", str(path), "--out", str(out / "runs")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (d,) = (out / "runs").iterdir()
    return d


def test_every_point_ok_with_quality_filled(run_dir):
    df = load(run_dir)
    assert len(df) == 18 and set(df["status"]) == {"ok"}
    assert df["quality_kl_mean"].notna().all() and df["quality_top1_agreement"].notna().all()
    assert df["quality_perplexity"].notna().all()


def test_stored_weight_sizes_are_ordered(run_dir):
    size = load(run_dir).groupby("precision")["weights_mib"].first()
    assert size["fp32"] > size["bf16"] > size["int8"] > size["int4"]
    assert size["int4-fp4"] == pytest.approx(size["int4"], rel=0.01)
    assert size["int8-quanto"] < size["bf16"]  # counted from the inner int8 data, not the nominal dtype


def test_quality_orders_the_quantizers(run_dir):
    q = {precision: v for (_, precision), v in read_quality(run_dir).items()}
    assert q["fp32"]["kl_mean"] == 0 and q["fp32"]["top1_agreement"] == 1
    assert 0 < q["bf16"]["kl_mean"] < q["int8"]["kl_mean"] < q["int4"]["kl_mean"]
    assert all(v["reference"] == "fp32" for v in q.values())


def test_parameter_count_is_the_logical_one_under_packing(run_dir):
    from llmbench.analysis.results import load_records

    counts = {r.point.precision: r.model.n_params for r in load_records(run_dir)}
    assert len(set(counts.values())) == 1, counts  # 4-bit packing does not halve the parameter count
