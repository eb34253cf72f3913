"""Shards keep groups whole and cover the sweep exactly; merge rebuilds the unsharded set of points."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from llmbench.config.loading import load_scenario
from llmbench.config.sharding import ShardError, assign_shards, parse_shard, select_shard
from llmbench.config.sweep import expand_sweep
from llmbench.execute.store import read_records

SWEEP = """
name: sharded
models: [tiny-llama, tiny-gpt2, tiny-qwen2]
precision: [fp32, bf16]
batch_size: [1, 2]
prompt: {input_tokens: 8}
max_new_tokens: 3
warmup: 0
iterations: 1
min_duration_s: 0
device: cpu
cpu_threads: 1
"""


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_shards_partition_the_points_and_keep_groups_whole(write_scenario, n):
    points = expand_sweep(load_scenario(write_scenario(SWEEP)))
    shards = [select_shard(points, k, n) for k in range(1, n + 1)]
    ids = [p.id for s in shards for p in s]
    assert sorted(ids) == sorted(p.id for p in points) and len(ids) == len(set(ids))
    owner = {p.group_id: k for k, s in enumerate(shards) for p in s}
    assert all(owner[p.group_id] == k for k, s in enumerate(shards) for p in s)
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 2  # 6 equal groups of 2 points: balanced
    assert shards == [select_shard(points, k, n) for k in range(1, n + 1)]  # deterministic


def test_more_shards_than_groups_leaves_some_empty(write_scenario):
    points = expand_sweep(load_scenario(write_scenario(SWEEP)))
    assert [len(s) for s in assign_shards(points, 8)].count(0) == 2


def test_parse_shard_and_slurm():
    assert parse_shard("2/4", {}) == (2, 4)
    assert parse_shard(None, {}) is None
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "3"}) == (1, 3)
    slurm = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}
    assert parse_shard(None, slurm) == (4, 4)
    assert parse_shard("1/2", slurm) == (1, 2)  # the flag wins
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ShardError):
            parse_shard(bad, {})


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmbench", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_two_shards_merged_equal_the_unsharded_run(write_scenario, tmp_path):
    text = SWEEP.replace("models: [tiny-llama, tiny-gpt2, tiny-qwen2]", "models: [tiny-llama, tiny-gpt2]")
    scenario = write_scenario(text)
    for k in (1, 2):
        assert cli("run", str(scenario), "--shard", f"{k}/2", "--out", str(tmp_path / "shards")).returncode == 0
    full = cli("run", str(scenario), "--out", str(tmp_path / "full"))
    assert full.returncode == 0
    shard_dirs = sorted((tmp_path / "shards").iterdir())
    assert [d.name.split("_", 1)[1] for d in shard_dirs] == ["sharded-shard1of2", "sharded-shard2of2"]
    merged = cli("merge", *map(str, shard_dirs), "-o", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    (full_dir,) = (tmp_path / "full").iterdir()
    ids = lambda d: sorted(r.point_id for r in read_records(d)[0])  # noqa: E731
    assert ids(tmp_path / "merged") == ids(full_dir) and len(ids(full_dir)) == 8

    # merge refuses another scenario, and another environment unless told otherwise
    other = tmp_path / "other"
    shutil.copytree(shard_dirs[1], other)
    scen = json.loads((other / "scenario.json").read_text())
    scen["batch_size"] = [1, 2, 4]
    (other / "scenario.json").write_text(json.dumps(scen))
    refused = cli("merge", str(shard_dirs[0]), str(other), "-o", str(tmp_path / "m2"))
    assert refused.returncode == 2 and "batch_size" in refused.stderr
    (other / "scenario.json").write_text((shard_dirs[1] / "scenario.json").read_text())
    env = json.loads((other / "env.json").read_text())
    env["packages"]["torch"] = "0.0.1"
    (other / "env.json").write_text(json.dumps(env))
    refused = cli("merge", str(shard_dirs[0]), str(other), "-o", str(tmp_path / "m3"))
    assert refused.returncode == 2 and "torch" in refused.stderr
    allowed = cli("merge", str(shard_dirs[0]), str(other), "-o", str(tmp_path / "m4"), "--allow-mismatch")
    assert allowed.returncode == 0


@pytest.mark.slow
def test_merge_reports_missing_points(write_scenario, tmp_path):
    scenario = write_scenario(SWEEP.replace("models: [tiny-llama, tiny-gpt2, tiny-qwen2]", "models: [tiny-llama]"))
    assert cli("run", str(scenario), "--shard", "1/2", "--out", str(tmp_path / "s")).returncode == 0
    (d,) = (tmp_path / "s").iterdir()
    # shard 1/2 of 2 groups holds one group; the other shard's 2 points are reported missing
    result = cli("merge", str(d), "-o", str(tmp_path / "m"))
    assert result.returncode == 1 and "merged 2 points" in result.stdout
    assert "2 planned point(s) have no record" in result.stderr


def test_empty_shard_exits_0_without_a_run_directory(write_scenario, tmp_path):
    scenario = write_scenario(SWEEP.replace("models: [tiny-llama, tiny-gpt2, tiny-qwen2]", "models: [tiny-llama]")
                              .replace("precision: [fp32, bf16]", "precision: fp32"))
    result = cli("run", str(scenario), "--shard", "2/2", "--out", str(tmp_path / "s"))
    assert result.returncode == 0 and "no points" in result.stdout
    assert not (tmp_path / "s").exists()


def test_slurm_array_with_a_step():
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1",
           "SLURM_ARRAY_TASK_STEP": "2"}  # --array=1-7:2 -> ids 1, 3, 5, 7
    assert parse_shard(None, env) == (3, 4)
