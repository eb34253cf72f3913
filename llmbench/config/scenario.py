"""The scenario schema: pydantic models of a sweep (llmbench/config/loading.py reads a file into them).

A Scenario is inert configuration: loading one touches no GPU, no network and no environment variable. Sweep
axes accept a scalar or a list (`batch_size: 4` means `[4]`); their names and closed sets of values come from
the axis table (llmbench/core/axes.py), and so do the fields of include/exclude rules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, create_model

from llmbench.config.decoding import DecodingPreset, Greedy
from llmbench.config.executor import ExecutorSpec
from llmbench.config.gates import DEFAULT_ALPHA, DEFAULT_GATES, CompareSpec
from llmbench.config.load import Load
from llmbench.core.axes import APIS, ATTN_IMPLEMENTATIONS, AXES_TABLE, CACHE_IMPLEMENTATIONS, PREFIX_CACHES
from llmbench.core.precisions import PRECISIONS


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _as_model(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


def _str_keys(value: Any) -> Any:
    """YAML reads `{0: 20GiB}` with an int key; GPU indices are names here."""
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


def _as_preset(value: Any) -> Any:
    return {"strategy": value} if isinstance(value, str) else value


def _known_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}")
    return name


PrecisionName = Annotated[str, AfterValidator(_known_precision)]
CacheKind = Literal[CACHE_IMPLEMENTATIONS]  # the closed sets of the axis table
AttnKind = Literal[ATTN_IMPLEMENTATIONS]
ApiKind = Literal[APIS]
PrefixCacheKind = Literal[PREFIX_CACHES]
Depths = Annotated[list[Annotated[int, Field(ge=0, le=10_000_000)]], BeforeValidator(_as_list), Field(min_length=1)]
PositiveInt = Annotated[int, Field(gt=0)]
ORDERS = ("blocked", "round_robin")  # how a model group's measured calls are ordered (llmbench/measure/round_robin.py)
DEFAULT_ORDER = "blocked"  # round_robin moved per-call numbers (docs/measuring.md): opt-in until that is explained
MaxNewTokens = Annotated[int, Field(gt=0, le=1_000_000)]
Sizes = Annotated[list[PositiveInt], BeforeValidator(_as_list), Field(min_length=1)]
_Frozen = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(BaseModel):
    model_config = _Frozen

    id: str = Field(min_length=1, description="Hub id, local folder, or built-in name (tiny-llama, ...).")
    name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.+-]+$", description="Label in point ids; default: last part of id."
    )
    revision: str | None = Field(default=None, description="Hub revision (branch, tag or commit).")
    trust_remote_code: bool = Field(default=False, description="Allow the model repo's own Python code.")
    device_map: str | None = Field(
        default=None, pattern=r"^(auto|balanced|balanced_low_0|sequential|cpu|cuda(:\d+)?)$",
        description="accelerate placement, e.g. auto: spread a model larger than one GPU over all "
        "visible GPUs (and CPU); default: the whole model on the run's device."
    )
    max_memory: Annotated[dict[str, str], BeforeValidator(_str_keys)] | None = Field(
        default=None, description="With device_map: memory per device, e.g. {'0': '20GiB', '1': '20GiB', cpu: '64GiB'}."
    )

    @property
    def label(self) -> str:
        return self.name or self.id.rstrip("/").split("/")[-1]


class Prompt(BaseModel):
    model_config = _Frozen

    kind: Literal["synthetic", "file"] = Field(
        default="synthetic", description="synthetic: seeded random token ids; file: prompts from a file."
    )
    input_tokens: Sizes = Field(default=[32], description="Prompt length(s) in tokens (synthetic prompts).")
    path: str | None = Field(
        default=None, description="Prompt file (kind: file), relative to the scenario: .txt (a prompt per "
        "line) or .jsonl (an object per line)."
    )
    field: str = Field(default="prompt", description="JSONL key that holds the prompt text.")


class BatchSearch(BaseModel):
    """A batch size found while running: the largest that fits (llmbench/measure/batch_search.py)."""

    model_config = _Frozen

    search: Literal["max"] = Field(description="max: double from `start` until out of memory, then bisect to the "
                                   "largest batch that fits.")
    limit: int = Field(default=1024, gt=0, le=1_000_000, description="Largest batch size tried.")
    start: int = Field(default=1, gt=0, description="First batch size tried.")

    @property
    def label(self) -> str:
        return self.search  # point ids read bs-max


def _batch_form(value: Any) -> str:
    return "batch-search" if isinstance(value, dict | BatchSearch) else "batch-list"


# tags pydantic adds to an error's location inside batch_size; not fields, so never shown
BATCH_TAGS = ("batch-search", "batch-list")
BatchAxis = Annotated[Annotated[BatchSearch, Tag(BATCH_TAGS[0])] | Annotated[Sizes, Tag(BATCH_TAGS[1])],
                      Discriminator(_batch_form)]


class Quality(BaseModel):
    """Quality of each precision against a reference precision of the same model (llmbench/measure/quality.py)."""

    model_config = _Frozen

    reference: Annotated[str, AfterValidator(lambda v: v if v == "auto" else _known_precision(v))] = Field(
        default="auto", description="Reference precision; auto: bf16 on a GPU, fp32 on a CPU.")
    tokens: int = Field(default=1024, ge=16, description="Tokens of the shipped evaluation text to score.")
    seq_len: int = Field(default=256, ge=8, description="Window length the evaluation text is cut into.")
    greedy_new_tokens: int = Field(default=32, ge=1, description="Greedy tokens compared on the benchmark prompts.")


def _as_quality(value: Any) -> Any:
    return {} if value is True else (None if value is False else value)


def _as_profile(value: Any) -> Any:
    return {} if value is True else (None if value is False else value)


class Profile(BaseModel):
    """Profile some points once more after their measured calls (llmbench/measure/profiling.py); never measured."""

    model_config = _Frozen

    points: Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=["all"], description="Point ids or shell-style patterns (tiny-llama/*/bs8/*) to profile; all: every "
        "point.")
    steps: int | None = Field(default=16, gt=0, description="Decode steps kept in the trace after the prefill; "
                              "null: every step (~250 host ops per layer and step, plus kernels on CUDA).")
    with_stack: bool = Field(default=False, description="Record Python stacks in the trace (bigger; the profiled call "
                               "runs tens of times slower).")
    memory: bool = Field(default=True, description="On CUDA: one more call records the allocator's history, saved "
                         "as a snapshot that pytorch.org/memory_viz opens.")


class _Rule(BaseModel):
    """A partial point: matches (exclude) or adds (include) every point with these axis values."""

    model_config = _Frozen

    def axes(self) -> dict[str, list[Any]]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


# a rule's values per axis: labels for models and presets (checked against the scenario's), the scenario's own
# types for the numbers, and the axis table's choices for the closed sets
_RULE_TYPES: dict[str, Any] = {"model": list[str], "precision": list[str], "batch_size": Sizes, "input_tokens": Sizes,
                               "max_new_tokens": list[MaxNewTokens], "decoding": list[str], "compile": list[bool],
                               "load_level": list[Annotated[float, Field(gt=0)]], "cb_num_blocks": Sizes,
                               "cb_max_batch_tokens": Sizes, "cb_max_memory_percent": list[float],
                               "cb_max_requests_per_batch": Sizes, "context_depth": Depths}
Rule = create_model("Rule", __base__=_Rule, **{  # one optional field per swept axis
    a.name: (Annotated[_RULE_TYPES.get(a.name) or list[Literal[a.choices]], BeforeValidator(_as_list)] | None, None)
    for a in AXES_TABLE if a.swept})


class Scenario(BaseModel):
    model_config = _Frozen

    schema_version: Literal[1] = Field(default=1, description="Scenario file format version.")
    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$", description="Names the run directory.")
    description: str = ""
    models: Annotated[
        list[Annotated[ModelSpec, BeforeValidator(_as_model)]], BeforeValidator(_as_list), Field(min_length=1)
    ] = Field(description="Models: a hub id, a local folder or a built-in name, or a mapping with id, name, ...")
    precision: Annotated[list[PrecisionName], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=["fp32"], description=f"Precisions to sweep: {', '.join(PRECISIONS)}."
    )
    batch_size: BatchAxis = Field(default=[1], description="Batch sizes to sweep: sequences per generate() call "
                                  "(>= 1); or {search: max, limit: 1024}: find the largest that fits.")
    prompt: Prompt = Field(default_factory=Prompt, description="Where prompts come from.")
    max_new_tokens: Annotated[list[MaxNewTokens], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=[32], description="New tokens per sequence to sweep (>= 1); bounds every call."
    )
    fixed_length: bool = Field(
        default=True, description="min_new_tokens = max_new_tokens; the record checks every sequence got N."
    )
    decoding: Annotated[
        list[Annotated[DecodingPreset, BeforeValidator(_as_preset)]], BeforeValidator(_as_list), Field(min_length=1)
    ] = Field(default_factory=lambda: [Greedy()], description="Decoding presets: greedy, sampling, beam.")
    order: Literal[ORDERS] = Field(
        default=DEFAULT_ORDER, description="blocked: each point's measured calls one after the other; round_robin: a "
        "model group's measured calls in rounds, one call per point per round in an order shuffled from the seed "
        "(a burst of noise is spread over every point instead of shifting one).")
    warmup: int = Field(default=2, ge=0, description="Warm-up calls per point, recorded apart.")
    iterations: int = Field(default=10, gt=0, description="Minimum measured calls per point.")
    min_duration_s: float = Field(default=1.0, ge=0, description="Minimum measured seconds per point.")
    max_iterations: int = Field(default=1000, gt=0, description="Hard cap on measured calls per point.")
    point_timeout_s: float = Field(
        default=1800, gt=0, description="Wall limit per point (and per model load); past it the worker is killed "
        "and the point gets status timeout."
    )
    skip_larger_after_oom: bool = Field(
        default=True, description="After an OOM at batch B, record larger batches of the same shape as skipped."
    )
    cache_implementation: Annotated[list[CacheKind], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=["dynamic"], description="KV cache kinds to sweep: dynamic, static, quantized (4-bit, quanto), "
        "offloaded."
    )
    attn_implementation: Annotated[list[AttnKind], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=["default"], description="Attention kernels to sweep: default (the model's), eager, sdpa, "
        "flash_attention_2, flex_attention."
    )
    compile: Annotated[list[bool], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=[False], description="torch.compile the model's forward (compile time recorded apart)."
    )
    api: Annotated[list[ApiKind], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=["generate"], description="generate: model.generate() on token ids; pipeline: the "
        "text-generation pipeline on text prompts (tokenizing and decoding included), to show its overhead."
    )
    context_depth: Depths = Field(
        default=[0], description="Prefix tokens already in the KV cache before each call (llama-bench -d): the "
        "prefix is prefilled once outside the timed calls and its cache copied per call, so TTFT and TPOT are those "
        "of the prompt and the generation at this depth (0: none).")
    prefix_cache: Annotated[list[PrefixCacheKind], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=["reused"], description="With a context depth: reused (the prefix's cache prefilled once and copied "
        "per call) or recomputed (the prefix sent with the prompt and prefilled inside every call), to show what "
        "reuse saves.")
    stop_strings: list[str] = Field(default=[], description="Stop a sequence when it produces one of these "
                                    "(needs fixed_length: false and a tokenizer).")
    max_time_s: float | None = Field(default=None, gt=0, description="generate()'s max_time: a guard that ends a "
                                     "call after this long (a cut call breaks fixed_length).")
    quality: Annotated[Quality | None, BeforeValidator(_as_quality)] = Field(
        default=None, description="true, or {reference, tokens, ...}: score each precision against a reference."
    )
    profile: Annotated[Profile | None, BeforeValidator(_as_profile)] = Field(
        default=None, description="true, or {points, steps, with_stack, memory}: one profiled call per chosen point "
        "after its measured calls (torch.profiler trace, top ops, prefill/decode breakdown).")
    nvtx: bool = Field(default=False, description="NVTX ranges around prefill, each decode step and the sampling in "
                       "every call, for nsys (CUDA only; a no-op on a CPU).")
    sample_interval_ms: float = Field(default=10, gt=0, description="Sampler thread period (memory, power, "
                                      "clocks).")
    selfcheck_pairs: int = Field(default=5, ge=0, le=1000, description="Pairs of plain generate() and "
                                 "instrumented calls at the start of each model group: the harness's own overhead on "
                                 "this machine, in every record and the report's header (0: off).")
    max_cv: float = Field(default=0.05, gt=0, description="Flag a point unstable above this cv of e2e_ms.")
    steady_tolerance: float = Field(default=0.10, gt=0, description="Flag a point not_steady when its first "
                                    "measured calls are this much slower than the rest.")
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$", description="auto, cpu, cuda, cuda:N")
    seed: int = Field(default=0, description="Seeds synthetic prompts and sampling (call i uses seed + i).")
    cpu_threads: int | None = Field(default=None, gt=0, description="torch.set_num_threads; default: torch's.")
    exclude: list[Rule] = Field(default=[], description="Drop every point matching one of these.")
    include: list[Rule] = Field(default=[], description="Add the points these describe (axes left out expand).")
    compare: CompareSpec | None = Field(default=None, description="Regression gates for `llmbench compare`; "
                                        "default: " + ", ".join(DEFAULT_GATES) + f", alpha {DEFAULT_ALPHA}.")
    executor: ExecutorSpec | None = Field(default=None, description="Where the model groups run: local (default), "
                                          "slurm or ray, and what each task asks for (docs/executors/).")
    load: Load | None = Field(default=None, description="Serving load points: requests arriving over time at "
                              "continuous batching, in process or through an endpoint (docs/serving.md). With it, "
                              "static batches run only when batch_size is given.")

    @property
    def static_points(self) -> bool:
        """Whether the sweep has static-batch points: always without `load:`, with it only when batch_size is
        given explicitly (its default would add a batch-1 point nobody asked for)."""
        return self.load is None or "batch_size" in self.model_fields_set

    @property
    def presets(self) -> list[Any]:
        """The decoding presets the sweep runs: each entry of `decoding`, a speculative one once per value of its
        draft list (assistant_model, prompt_lookup_num_tokens)."""
        return [p for d in self.decoding for p in d.expand()]
