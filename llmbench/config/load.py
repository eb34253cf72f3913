"""The scenario's `load:` section: serving load points beside static batches (docs/serving.md).

How requests arrive at each load level (poisson, constant rate, burst, or a closed loop of fixed concurrency), how
long prompts and outputs are, which engine serves them (transformers' continuous batching in the worker, a
`transformers serve` llmbench starts, or a running OpenAI-compatible server), the continuous-batching settings (each
a sweep axis), the SLO a level is judged by, an optional saturation search, and the bounds that keep every level
finite. Inert: no GPU, network or environment. Cross-field rules are in llmbench/config/load_checks.py.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from llmbench.core.axes import CB_SCHEDULERS, ENGINES

_Frozen = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    return value if value is None or isinstance(value, list) else [value]


PosInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class Lengths(BaseModel):
    """A token-length distribution: fixed, uniform on [min, max], or lognormal clipped to [min, max]."""

    model_config = _Frozen

    dist: Literal["fixed", "uniform", "lognormal"] = Field(default="fixed", description="fixed, uniform or "
                                                           "lognormal (clipped to [min, max]).")
    value: int | None = Field(default=None, ge=1, description="fixed: the length.")
    min: int = Field(default=1, ge=1, description="uniform: lowest length; lognormal: values below become min.")
    max: int | None = Field(default=None, ge=1, description="uniform: highest length; lognormal: values above "
                            "become max.")
    median: float | None = Field(default=None, gt=0, description="lognormal: median length, exp(mu).")
    sigma: float | None = Field(default=None, gt=0, description="lognormal: standard deviation of ln(length).")

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        return {"value": value} if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _complete(self) -> Lengths:
        need = {"fixed": ["value"], "uniform": ["max"], "lognormal": ["median", "sigma", "max"]}[self.dist]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"dist {self.dist} needs {', '.join(missing)}")
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self

    def draw(self, u: float) -> int:
        """The length at uniform quantile u in [0, 1) (inverse CDF; lognormal through the normal quantile)."""
        from statistics import NormalDist

        if self.dist == "fixed":
            return int(self.value)  # type: ignore[arg-type]
        if self.dist == "uniform":
            return self.min + int(u * (self.max - self.min + 1))  # type: ignore[operator]
        z = NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
        x = round(self.median * math.exp(self.sigma * z))  # type: ignore[operator]
        return int(min(max(x, self.min), self.max))  # type: ignore[type-var]

    @property
    def label(self) -> str:
        """How the lengths show in a point id: 32, 16-64, ln256."""
        if self.dist == "lognormal":
            return f"ln{self.median:g}"
        return f"{self.min}-{self.max}" if self.dist == "uniform" else f"{self.value}"


class CBSettings(BaseModel):
    """transformers' ContinuousBatchingConfig fields a scenario may set; each is a sweep axis (a list), left out:
    the library's default. transformers serve has flags for num_blocks, max_batch_tokens, max_memory_percent and
    use_cuda_graph only; llmbench refuses the others for engine serve rather than drop them."""

    model_config = _Frozen

    num_blocks: Annotated[list[PosInt] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="KV-cache blocks; on a CPU set it (or max_memory_percent): the library's default "
        "sizes the cache from 60% of free RAM.")
    max_batch_tokens: Annotated[list[PosInt] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="Tokens per step (prefill and decode together).")
    max_memory_percent: Annotated[list[Fraction] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="Share of free memory the cache may take (0-1].")
    max_requests_per_batch: Annotated[list[PosInt] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="Requests per step.")
    scheduler_type: Annotated[list[Literal[CB_SCHEDULERS]] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="fifo or prefill_first.")
    allow_block_sharing: Annotated[list[bool] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="Prefix reuse between requests.")
    use_cuda_graph: Annotated[list[bool] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="CUDA graphs for the steps (CUDA only; a CPU ignores them).")

    def axes(self) -> dict[str, list[Any]]:
        """cb_<field> -> its values ([None]: the library's default)."""
        return {f"cb_{k}": list(getattr(self, k) or [None]) for k in type(self).model_fields}


class LoadSLO(BaseModel):
    """A request is good when it meets every bound at once; a level holds the SLO when `share` of its measured
    requests are good (DistServe's and vLLM's goodput)."""

    model_config = _Frozen

    ttft_ms: float | None = Field(default=None, gt=0, description="Bound on each request's TTFT (ms).")
    tpot_ms: float | None = Field(default=None, gt=0, description="Bound on each request's TPOT (ms).")
    e2e_ms: float | None = Field(default=None, gt=0, description="Bound on each request's e2e latency (ms).")
    share: Fraction = Field(default=0.9, description="Share of requests that must be good (0.9 ~ p90).")


class RateSearch(BaseModel):
    """Saturation search: levels start, start x growth, ... until one fails, then geometric bisection between the
    last pass and the first failure until they are within rel_tol or max_levels levels have run."""

    model_config = _Frozen

    start: float = Field(default=1.0, gt=0, description="First level: requests/s (poisson, constant) or "
                         "requests in flight (concurrency).")
    growth: float = Field(default=2.0, gt=1, description="Factor between levels until one fails.")
    max_levels: int = Field(default=8, ge=1, le=50, description="Levels at most.")
    rel_tol: float = Field(default=0.1, gt=0, lt=1, description="Stop when the first failing level is within "
                           "this share above the last passing one.")


class LoadBounds(BaseModel):
    """Nothing waits longer than these (seconds)."""

    model_config = _Frozen

    ready_timeout_s: float = Field(default=300, gt=0, description="serve: until the server answers /health.")
    stop_timeout_s: float = Field(default=15, gt=0, description="serve: after SIGTERM, before SIGKILL.")
    drain_timeout_s: float = Field(default=60, gt=0, description="After a level's last send.")
    stall_timeout_s: float = Field(default=30, gt=0, description="Endpoint: longest silence inside a stream.")
    request_timeout_s: float = Field(default=600, gt=0, description="Endpoint: one whole request.")
    level_timeout_s: float = Field(default=900, gt=0, description="One whole level.")


class Load(BaseModel):
    """Serving load points (docs/serving.md): every (model, precision, attention, compile, decoding, cb setting,
    engine, level) is a point of its own, with one record per level."""

    model_config = _Frozen

    engine: Annotated[list[Literal[ENGINES]], BeforeValidator(_as_list), Field(min_length=1)] = Field(
        default=["in_process"], description="in_process: transformers' continuous batching in the worker; serve: "
        "a transformers serve llmbench starts on 127.0.0.1; url: a running OpenAI-compatible server (`url`).")
    url: str | None = Field(default=None, pattern=r"^http://[^/\s]+/?$", description="engine url: the server, "
                            "http://HOST:PORT (plain http: loopback and trusted hosts).")
    server_kind: Literal["transformers", "vllm", "plain"] = Field(
        default="transformers", description="How to ask the url server for a fixed length: transformers "
        "(generation_config with eos_token_id -1), vllm (ignore_eos, min_tokens), plain (nothing: EOS may end).")
    process: Literal["poisson", "constant", "burst", "concurrency"] = Field(
        default="poisson", description="poisson: exponential gaps; constant: even gaps; burst: burst_size at "
        "once every burst_interval_s; concurrency: a closed loop of N requests in flight.")
    rate_per_s: Annotated[list[Annotated[float, Field(gt=0)]] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="poisson, constant: request rates, one level each (a sweep axis).")
    concurrency: Annotated[list[PosInt] | None, BeforeValidator(_as_list)] = Field(
        default=None, description="concurrency: requests in flight, one level each (a sweep axis).")
    burst_size: int | None = Field(default=None, ge=1, description="burst: requests sent together.")
    burst_interval_s: float | None = Field(default=None, gt=0, description="burst: seconds between bursts.")
    requests: int | None = Field(default=None, ge=1, description="Requests per level, warm-up included (>= 30 "
                                 "measured ones make a level's figures worth reading).")
    duration_s: float | None = Field(default=None, gt=0, description="Or: seconds of arrivals per level.")
    max_requests: int = Field(default=10_000, ge=1, description="Bound on a level's requests with duration_s.")
    warmup_requests: int = Field(default=0, ge=0, description="First requests of each level: sent, not measured.")
    prompts: Literal["synthetic", "text"] = Field(
        default="synthetic", description="synthetic: seeded random token ids; text: passages of the shipped "
        "English text (Persuasion), each cut to its drawn length.")
    prompt_tokens: Lengths = Field(default_factory=lambda: Lengths(value=32), description="Prompt lengths.")
    output_tokens: Lengths = Field(default_factory=lambda: Lengths(value=32), description="Output lengths.")
    exact_rate: bool = Field(default=True, description="poisson with requests: a Poisson process conditioned on its "
                             "count, so a level offers its rate exactly; false: free gaps (off by ~1/sqrt(n)).")
    ignore_eos: bool = Field(default=True, description="Exactly output_tokens per request; false: EOS may end "
                             "one early.")
    seed: int | None = Field(default=None, description="Seeds arrivals, lengths and prompts; default: the "
                             "scenario's seed.")
    cb: CBSettings = Field(default_factory=CBSettings, description="Continuous-batching settings, each an axis.")
    slo: LoadSLO | None = Field(default=None, description="What a good request is: goodput and the search use it.")
    search: RateSearch | None = Field(default=None, description="Find the highest level that holds the SLO "
                                      "instead of running fixed levels.")
    keep_up: Fraction = Field(default=0.95, description="A level is kept up with when completions per second reach "
                              "this share of the sent rate ...")
    max_e2e_growth: float = Field(default=1.5, gt=1, description="... and its last third's median e2e is at most "
                                  "this many times its first third's.")
    sample_interval_ms: float = Field(default=50, gt=0, description="In process: queue and KV sampling period.")
    bounds: LoadBounds = Field(default_factory=LoadBounds, description="Time limits that keep every level finite.")

    def levels(self) -> list[float | None]:
        """The levels a sweep runs: rates, concurrencies, [None] for a burst or a search (its point)."""
        if self.search is not None or self.process == "burst":
            return [None]
        return list(self.concurrency if self.process == "concurrency" else self.rate_per_s or [])

    @property
    def level_unit(self) -> str:
        return "concurrency" if self.process == "concurrency" else "rate_per_s"
