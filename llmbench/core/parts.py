"""The parts of a run record (llmbench/core/record.py): errors, per-metric summaries, calls, the point, the model's
facts, memory, device state, flags, quality, utilisation, probes, searches and profiles (the worker and the
executor: origin_parts.py). Each keeps the fields it does not know (forward compatible) and reads a missing field
as its default.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, create_model, field_validator

from llmbench.core.metrics import METRICS


class Part(BaseModel):
    """A part of a record: unknown fields are kept, so a newer writer's additions survive."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    def get(self, name: str) -> Any:
        """A field or an extra by name; None when absent."""
        return getattr(self, name, None)


class ErrorInfo(Part):
    type: str | None = None
    message: str | None = None
    traceback: str | None = None
    stderr_tail: str | None = None  # a crashed or timed-out worker's last stderr

    @property
    def text(self) -> str:
        return f"{self.type}: {self.message}"


class MetricSummary(Part):
    """A metric over the measured calls (llmbench/core/stats.py; docs/metrics.md, "Over the calls of one point")."""

    n: int
    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    p99: float | None = None
    min: float | None = None
    max: float | None = None
    stdev: float | None = None
    cv: float | None = None
    median_ci_low: float | None = None
    median_ci_high: float | None = None
    median_ci_level: float | None = None
    # serving load's per-request metrics only (llmbench/core/stats.py, tail_intervals): None where 95% is not reached
    p90_ci_low: float | None = None
    p90_ci_high: float | None = None
    p99_ci_low: float | None = None
    p99_ci_high: float | None = None


def inside_run_dir(name: str) -> str:
    """A file name a record gives: a relative path inside its run directory, never absolute, never through '..',
    never a URL (no ':'), no control characters. Readers join it to the run directory; nothing else is trusted."""
    path = PurePosixPath(name)
    if (not name or path.is_absolute() or ".." in path.parts or any(c in name for c in ":\\~")
            or any(ord(c) < 32 for c in name)):
        raise ValueError("not a relative path inside the run directory")
    return name


RunPath = Annotated[str, AfterValidator(inside_run_dir)]


class _CallFacts(Part):
    e2e_ms: float
    ttft_ms: float
    decode_ms: float
    itl_ms: list[float] = []
    new_tokens: list[int] = []
    steps: int | None = None
    prompt_tokens: int | None = None  # P; older records leave it out
    host_e2e_ms: float | None = None
    e2e_host_ratio: float | None = None
    round: int | None = None  # round-robin order: the round (1, 2, ...) this call was made in; blocked: absent
    # speculative decoding (docs/metrics.md, "Speculative decoding"): the candidate generator's counts, and the
    # paired baseline call's figures; absent for other strategies
    draft_tokens: int | None = None
    accepted_tokens: int | None = None
    verification_steps: int | None = None
    baseline_e2e_ms: float | None = None
    baseline_tpot_ms: float | None = None


# One generate() call: the raw facts from its marks and outputs, and its metric values (the registry's per-call
# formulas: tpot_ms, decode_tokens_per_s, ...) as typed fields, read with `get`.
Call = create_model("Call", __base__=_CallFacts, __module__=__name__, **{
    m.name: (float | None, None) for m in METRICS.values()
    if m.kind == "call" and m.name not in _CallFacts.model_fields})


class PointFields(Part):
    """The point as the worker ran it (config.sweep.RunPoint.to_dict): the axes, labels and scenario settings."""

    id: str
    group_id: str | None = None
    model: str | None = None  # the model's label; model_spec holds the whole entry
    precision: str | None = None
    batch_size: int | None = None  # None on a load point (schema 3): a load level has no batch of its own
    input_tokens: int | None = None
    max_new_tokens: int | None = None  # None on a load point: its output lengths are the load's
    decoding: str | None = None  # the preset's label; decoding_spec holds the preset
    num_beams: int = 1
    assistant_model: str | None = None
    prompt_lookup_num_tokens: int | None = None
    context_depth: int = 0
    prefix_cache: str = "reused"
    cache_implementation: str = "dynamic"
    attn_implementation: str = "default"
    compile: bool = False
    api: str = "generate"
    search_id: str | None = None
    batch_search: dict[str, Any] | None = None
    engine: str = "in_process"  # a load point's engine: in_process, serve or url (static points run in process)
    load_level: float | None = None  # a load point's rate_per_s or concurrency
    load: dict[str, Any] | None = None  # a load point's `load:` section as the scenario gave it


class ModelFacts(Part):
    """What the engine counted on the loaded model (docs/metrics.md, "Memory")."""

    source: str | None = None
    architecture: str | None = None
    dtype: str | None = None
    n_params: int | None = None
    weights_mib: float | None = None
    footprint_mib: float | None = None
    layers: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    kv_bytes_per_element: float | None = None
    vocab_size: int | None = None
    max_positions: int | None = None  # max_position_embeddings: the longest sequence the model was built for
    linear_params: int | None = None
    linear_rows: int | None = None
    linear_layers: int | None = None
    lm_head_params: int | None = None


# (field, label) in the order the console's "peak MiB" column takes the first one a record has
SHOWN_PEAKS = (("torch_peak_allocated_mib", "torch"), ("device_used_peak_mib", "nvml"), ("host_rss_peak_mib", "rss"))


class Memory(Part):
    host_rss_peak_mib: float | None = None
    host_rss_end_mib: float | None = None
    torch_peak_allocated_mib: float | None = None
    torch_peak_reserved_mib: float | None = None
    device_used_peak_mib: float | None = None
    process_used_peak_mib: float | None = None

    def shown_peak(self) -> tuple[float | None, str]:
        """(MiB, "torch" | "nvml" | "rss"): the peak the console and the memory figure show."""
        return next(((self.get(k), label) for k, label in SHOWN_PEAKS if self.get(k) is not None), (None, ""))


class DeviceStats(Part):
    """The sampler's summaries over the measured phase, and energy (docs/metrics.md, "Device state and energy")."""

    samples_n: int | None = None
    throttled: bool | None = None
    throttle_reasons: list[str] | None = None
    foreign_pids: list[int] | None = None
    energy_j: float | None = None
    avg_power_w: float | None = None
    energy_per_token_j: float | None = None


class Flags(Part):
    """Validity flags: True raised, False not, None cannot be judged (docs/metrics.md, "Validity flags")."""

    unstable: bool | None = None
    not_steady: bool | None = None
    throttled: bool | None = None
    foreign_gpu_processes: bool | None = None
    timer_disagrees: bool | None = None

    @property
    def raised(self) -> list[str]:
        return [name for name, value in self if value]


class Quality(Part):
    """The point's (model, precision) scored against the reference precision (docs/metrics.md, "Quality")."""

    status: str | None = None
    reference: str | None = None
    kl_mean: float | None = None
    top1_agreement: float | None = None


class Utilisation(Part):
    """Decode MBU and prefill MFU against the device's probes (docs/metrics.md, "Utilisation ...")."""

    decode_bytes_per_step: float | None = None
    decode_gb_per_s: float | None = None
    prefill_flops: float | None = None
    prefill_tflop_per_s: float | None = None
    peak_copy_gb_per_s: float | None = None
    peak_matmul_tflop_per_s: float | None = None
    mbu: float | None = None
    mfu: float | None = None


class SelfCheck(Part):
    """The harness's overhead against plain generate() on one point of the group (docs/metrics.md, "The harness's
    self-check"; measured by llmbench/measure/selfcheck.py, summarised by llmbench/core/harness_overhead.py)."""

    point_id: str | None = None
    error: str | None = None  # why the check could not run; the other fields are then absent
    pairs: int | None = None
    steps_per_call: int | None = None
    plain_ms: list[float] = []
    instrumented_ms: list[float] = []
    plain_median_ms: float | None = None
    instrumented_median_ms: float | None = None
    overhead_pct: float | None = None
    overhead_pct_ci: list[float] | None = None
    ci_level: float | None = None
    per_step_us: float | None = None
    per_step_us_ci: list[float] | None = None
    other_cpu_cores: float | None = None
    loadavg_1m: float | None = None


class DevicePeaks(Part):
    """The device's probe figures (llmbench/measure/roofline.py) the utilisation is judged against."""

    key: str | None = None
    copy_gb_per_s: float | None = None
    matmul_dtype: str | None = None
    matmul_tflop_per_s: float | None = None
    measured_at: str | None = None


class SearchStep(Part):
    search_id: str


class SearchResult(Part):
    """A max-batch search's outcome, on the search's own record (llmbench/measure/batch_search.py)."""

    boundary_batch_size: int
    first_failed_batch_size: int | None = None
    exact: bool = False
    limit_reached: bool = False
    stopped_by: dict[str, str] | None = None
    trials: list[list[Any]] = []
    start: int = 1
    limit: int = 1
    memory_limit_mib: float | None = None
    memory_limit_source: str | None = None


class Profile(Part):
    """A profiled call (llmbench/measure/profiling.py; docs/metrics.md, "Profiling"): its own timing, the trace's
    tables per phase (prefill, decode: wall_ms, steps, host_breakdown_ms, top_ops, ...), the memory snapshot's
    summary, and the files it wrote under the run's profiles/."""

    status: str | None = None
    device: str | None = None
    steps_limit: int | None = None
    with_stack: bool | None = None
    trace_file: RunPath | None = None
    call: dict[str, float | None] | None = None  # the profiled call's e2e_ms, ttft_ms, decode_ms, steps
    phases: dict[str, dict[str, Any]] | None = None
    generate_python_ms_per_step: float | None = None
    generate_ms_per_step: float | None = None
    model_python_ms_per_step: float | None = None
    device_reason: str | None = None  # why there is no device breakdown (a CPU run)
    memory: dict[str, Any] | None = None  # the CUDA snapshot's summary, or the reason there is none
    files: list[RunPath] = []
    error: ErrorInfo | None = None

    @field_validator("memory")
    @classmethod
    def _snapshot_inside(cls, memory: dict[str, Any] | None) -> dict[str, Any] | None:
        if memory and memory.get("snapshot_file") is not None:
            inside_run_dir(str(memory["snapshot_file"]))
        return memory
