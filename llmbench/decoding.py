"""Decoding presets: the named strategies a scenario's `decoding:` list may use.

Each preset is a small pydantic model whose `generate_kwargs()` gives the generate() arguments it
stands for. Adding a strategy is one class here plus its entry in `DecodingPreset`. No torch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Preset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.+-]+$",
        description="Label used in point ids; defaults to the strategy name.",
    )

    @property
    def label(self) -> str:
        return self.name or self.strategy  # type: ignore[attr-defined]

    def generate_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def beams(self) -> int:
        return 1


class Greedy(_Preset):
    """Pick the most likely token at every step."""

    strategy: Literal["greedy"] = "greedy"

    def generate_kwargs(self) -> dict[str, Any]:
        return {"do_sample": False, "num_beams": 1}


class Sampling(_Preset):
    """Multinomial sampling with temperature, top-k and top-p (nucleus) filtering."""

    strategy: Literal["sampling"] = "sampling"
    temperature: float = Field(default=1.0, gt=0, description="Softmax temperature (> 0).")
    top_k: int = Field(default=50, ge=0, description="Keep the k most likely tokens; 0 disables.")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus mass in (0, 1]; 1 disables.")

    def generate_kwargs(self) -> dict[str, Any]:
        return {
            "do_sample": True,
            "num_beams": 1,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
        }


class Beam(_Preset):
    """Beam search; throughput counts output tokens (B * N), not hypotheses."""

    strategy: Literal["beam"] = "beam"
    num_beams: int = Field(default=4, ge=2, le=64, description="Beams per sequence (>= 2).")
    length_penalty: float = Field(default=1.0, description="Exponent on length in beam scores.")

    def generate_kwargs(self) -> dict[str, Any]:
        return {
            "do_sample": False,
            "num_beams": self.num_beams,
            "length_penalty": self.length_penalty,
            "early_stopping": False,
        }

    @property
    def beams(self) -> int:
        return self.num_beams


DecodingPreset = Annotated[Greedy | Sampling | Beam, Field(discriminator="strategy")]

STRATEGIES: dict[str, type[_Preset]] = {"greedy": Greedy, "sampling": Sampling, "beam": Beam}
