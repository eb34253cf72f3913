"""Decoding presets: the named strategies a scenario's `decoding:` list may use.

Each preset is a small pydantic model whose `generate_kwargs()` gives the generate() arguments it
stands for, plus what it needs (`max_batch_size`, `assistant`). Adding a strategy is one class here
and its entry in `DecodingPreset`. No torch.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# generate() arguments llmbench sets itself: a preset's generate_args may not override them
RESERVED_ARGS = {"max_new_tokens", "min_new_tokens", "max_length", "min_length", "stopping_criteria",
                 "generation_config", "input_ids", "attention_mask", "num_return_sequences", "streamer",
                 "use_cache", "eos_token_id", "pad_token_id", "bos_token_id", "stop_strings", "max_time",
                 "cache_implementation", "cache_config", "assistant_model", "tokenizer", "custom_generate",
                 "trust_remote_code"}


class _Preset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.+-]+$", description="Label used in point ids; default: the strategy."
    )
    generate_args: dict[str, Any] = Field(
        default_factory=dict, description="Extra generate() arguments passed through as they are."
    )
    custom_generate: str | None = Field(
        default=None, description="A local folder with a custom_generate/generate.py; runs that code, so every "
        "model it is used with needs trust_remote_code: true."
    )

    @field_validator("generate_args")
    @classmethod
    def _not_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(RESERVED_ARGS & set(value))
        if clash:
            raise ValueError(f"{', '.join(clash)}: set by llmbench from the scenario (max_new_tokens, fixed_length, "
                             "stop_strings, max_time_s, cache_implementation, ...)")
        return value

    @property
    def label(self) -> str:
        return self.name or self.strategy  # type: ignore[attr-defined]

    def strategy_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def generate_kwargs(self) -> dict[str, Any]:
        return {**self.strategy_kwargs(), **self.generate_args}

    @property
    def beams(self) -> int:
        return 1

    max_batch_size: ClassVar[int | None] = None  # generate() refuses larger batches for this strategy
    speculative: ClassVar[bool] = False  # drafts and verifies: needs a cache generate() can crop

    def assistant_id(self) -> str | None:
        """A second model to load beside the main one, if the strategy needs one."""
        return None

    def expand(self) -> list[_Preset]:
        """The presets this entry stands for: itself, or one per value of a swept draft setting."""
        return [self]

    def baseline_preset(self) -> _Preset | None:
        """The strategy a speculative point's calls are paired with, for its speedup."""
        return None

    def draft_settings(self) -> dict[str, Any]:
        """The draft's axis values, as point columns (assistant_model, prompt_lookup_num_tokens)."""
        return {"assistant_model": self.assistant_id(),
                "prompt_lookup_num_tokens": getattr(self, "prompt_lookup_num_tokens", None)}


class Greedy(_Preset):
    """Pick the most likely token at every step."""

    strategy: Literal["greedy"] = "greedy"

    def strategy_kwargs(self) -> dict[str, Any]:
        return {"do_sample": False, "num_beams": 1}


class Sampling(_Preset):
    """Multinomial sampling with temperature, top-k, top-p (nucleus) and a repetition penalty."""

    strategy: Literal["sampling"] = "sampling"
    temperature: float = Field(default=1.0, gt=0, description="Softmax temperature (> 0).")
    top_k: int = Field(default=50, ge=0, description="Keep the k most likely tokens; 0 disables.")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus mass in (0, 1]; 1 disables.")
    repetition_penalty: float = Field(default=1.0, gt=0, description="> 1 discourages repeats; 1 disables.")

    def strategy_kwargs(self) -> dict[str, Any]:
        return {"do_sample": True, "num_beams": 1, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "repetition_penalty": self.repetition_penalty}


class Beam(_Preset):
    """Beam search; throughput counts output tokens (B * N), not hypotheses."""

    strategy: Literal["beam"] = "beam"
    num_beams: int = Field(default=4, ge=2, le=64, description="Beams per sequence (>= 2).")
    length_penalty: float = Field(default=1.0, description="Exponent on length in beam scores.")

    def strategy_kwargs(self) -> dict[str, Any]:
        return {"do_sample": False, "num_beams": self.num_beams, "length_penalty": self.length_penalty,
                "early_stopping": False}

    @property
    def beams(self) -> int:
        return self.num_beams


class _Speculative(_Preset):
    """Drafts tokens and verifies them with one forward pass of the model: a draft's axis value may be a list
    (one preset each, `expand`), and each point is paired call by call with its baseline strategy."""

    baseline: Literal["greedy", "none"] = Field(
        default="greedy", description="Each measured call is paired with a call of this strategy on the same prompt "
        "and seed, interleaved, for speedup_vs_baseline; none: no baseline calls.")
    max_batch_size: ClassVar[int | None] = 1
    speculative: ClassVar[bool] = True
    _axis: ClassVar[str] = ""  # the field that may hold a list of values

    def expand(self) -> list[_Preset]:
        values = getattr(self, self._axis)
        if not isinstance(values, list):
            return [self]
        if len(values) == 1:
            return [self.model_copy(update={self._axis: values[0]})]
        return [self.model_copy(update={self._axis: v, "name": f"{self.label}-{_value_label(v)}"}) for v in values]

    def baseline_preset(self) -> _Preset | None:
        return Greedy() if self.baseline == "greedy" else None


def _value_label(value: Any) -> str:
    return str(value).rstrip("/").split("/")[-1]


class Assisted(_Speculative):
    """Assisted (speculative) decoding with a smaller assistant model; generate() allows batch 1 only."""

    strategy: Literal["assisted"] = "assisted"
    assistant_model: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="The assistant: a built-in name, hub id or local folder; a list sweeps them (one point each).")
    num_assistant_tokens: int = Field(default=5, ge=1, description="Tokens the assistant drafts per step (at most).")
    num_assistant_tokens_schedule: Literal["constant", "heuristic_transient"] = Field(
        default="constant", description="constant: always num_assistant_tokens; heuristic_transient: +2 after a "
        "fully accepted draft, -1 otherwise, reset every call (transformers' persistent `heuristic` would carry "
        "over from call to call, so the calls would not be alike).")
    assistant_confidence_threshold: float | None = Field(
        default=None, ge=0, le=1, description="The assistant stops drafting when its top token's probability falls "
        "below this; null: transformers' default (0.4); 0: always draft num_assistant_tokens.")
    _axis: ClassVar[str] = "assistant_model"

    def assistant_id(self) -> str | None:
        return self.assistant_model  # type: ignore[return-value] - one value once expanded

    def assistant_settings(self) -> dict[str, Any]:
        """What transformers reads from the *assistant's* generation_config, not from the call's: set there."""
        return {"num_assistant_tokens": self.num_assistant_tokens,
                "num_assistant_tokens_schedule": self.num_assistant_tokens_schedule,
                "assistant_confidence_threshold": self.assistant_confidence_threshold}

    def strategy_kwargs(self) -> dict[str, Any]:
        return {"do_sample": False, "num_beams": 1, "num_assistant_tokens": self.num_assistant_tokens}


class PromptLookup(_Speculative):
    """Prompt-lookup decoding: drafts from n-grams of the prompt, no second model; batch 1 only."""

    strategy: Literal["prompt_lookup"] = "prompt_lookup"
    prompt_lookup_num_tokens: Annotated[int, Field(ge=1)] | Annotated[list[Annotated[int, Field(ge=1)]],
                                                                      Field(min_length=1)] = Field(
        default=10, description="Tokens drafted per step; a list sweeps them (one point each).")
    max_matching_ngram_size: int = Field(default=2, ge=1, description="Longest n-gram matched in the prompt.")
    _axis: ClassVar[str] = "prompt_lookup_num_tokens"

    def strategy_kwargs(self) -> dict[str, Any]:
        return {"do_sample": False, "num_beams": 1, "prompt_lookup_num_tokens": self.prompt_lookup_num_tokens,
                "max_matching_ngram_size": self.max_matching_ngram_size}


DecodingPreset = Annotated[Greedy | Sampling | Beam | Assisted | PromptLookup, Field(discriminator="strategy")]

STRATEGIES: dict[str, type[_Preset]] = {c.model_fields["strategy"].default: c
                                         for c in (Greedy, Sampling, Beam, Assisted, PromptLookup)}
