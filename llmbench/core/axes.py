"""The axis table: the point fields a sweep varies, declared once.

An axis is a YAML key (under `prompt:` for input_tokens), a field of every point and of the record's `point`, a
key of include/exclude rules and a column of `llmbench.results.load`, under one name. The sweep's product, point
and group ids, rule fields, the DataFrame's point columns, the figures' series and the report's glossary are all
derived from this table. Adding an axis is one entry here, its scenario field, and the code that uses its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NO_DEFAULT = object()  # an axis whose value always shows in point ids (model, batch, shape, decoding)


@dataclass(frozen=True)
class Axis:
    name: str
    description: str  # the glossary's words
    choices: tuple[Any, ...] = ()  # the values a scenario may give, when the set is closed
    default: Any = NO_DEFAULT  # the value point ids leave out: an id shows this axis only where it differs
    id_label: str = ""  # how a non-default value shows in ids: "cache-{}" -> /cache-static
    loads_model: bool = False  # points that differ here need a model load of their own (a group)
    series_prefix: str = ""  # in figure legends: in64, out32
    swept: bool = True  # False: a column derived from another axis (num_beams, from the decoding preset)

    def id_part(self, value: Any) -> str:
        """The id suffix of a value, "" for the default."""
        if self.default is NO_DEFAULT or value == self.default:
            return ""
        return "/" + self.id_label.format(value)


CACHE_IMPLEMENTATIONS = ("dynamic", "static", "quantized", "offloaded")
ATTN_IMPLEMENTATIONS = ("default", "eager", "sdpa", "flash_attention_2", "flex_attention")
APIS = ("generate", "pipeline")
ENGINES = ("in_process", "serve", "url")  # a load point's engine (docs/serving.md)
CB_SCHEDULERS = ("fifo", "prefill_first")
# the load section's axes: YAML key under `load:` (or `load.cb:`) -> axis name
LOAD_AXES = {"engine": "engine", "level": "load_level", "cb.num_blocks": "cb_num_blocks",
             "cb.max_batch_tokens": "cb_max_batch_tokens", "cb.max_memory_percent": "cb_max_memory_percent",
             "cb.max_requests_per_batch": "cb_max_requests_per_batch", "cb.scheduler_type": "cb_scheduler_type",
             "cb.allow_block_sharing": "cb_allow_block_sharing", "cb.use_cuda_graph": "cb_use_cuda_graph"}

# The order is the product's (points vary fastest in the last axis) and every table's.
AXES_TABLE: tuple[Axis, ...] = (
    Axis("model", "the model's label (the last part of its id, or its `name:`)", loads_model=True),
    Axis("precision", "weights and compute precision, or a quantization (README, Precisions)", loads_model=True),
    Axis("batch_size", "B: sequences per generate() call"),
    Axis("input_tokens", "S: prompt tokens per sequence (synthetic prompts; null for a prompt file)",
         series_prefix="in"),
    Axis("max_new_tokens", "N: new tokens per sequence", series_prefix="out"),
    Axis("decoding", "the decoding preset's label (greedy, sampling, beam, ... or its `name:`)"),
    Axis("num_beams", "k: beams per sequence, from the decoding preset", series_prefix="beams", swept=False),
    Axis("cache_implementation", "the KV cache: dynamic, static, quantized (4-bit) or offloaded",
         CACHE_IMPLEMENTATIONS, "dynamic", "cache-{}"),
    Axis("attn_implementation", "the attention kernel; default: the model's own choice", ATTN_IMPLEMENTATIONS,
         "default", "attn-{}", loads_model=True),
    Axis("compile", "torch.compile of the model's forward", (False, True), False, "compiled", loads_model=True),
    Axis("api", "generate: model.generate() on ids; pipeline: the text-generation pipeline on text", APIS,
         "generate", "{}"),
    # load points (serving load, docs/serving.md); a static point has the default (in_process) or None
    Axis("engine", "a load point's engine: in_process (continuous batching in the worker), serve (a transformers "
         "serve llmbench starts) or url (a running OpenAI-compatible server)", ENGINES, "in_process", "{}",
         loads_model=True),
    Axis("cb_num_blocks", "continuous batching: KV-cache blocks (load.cb.num_blocks; null: the library's sizing)",
         default=None, id_label="blocks{}"),
    Axis("cb_max_batch_tokens", "continuous batching: tokens per step (load.cb.max_batch_tokens)", default=None,
         id_label="mbt{}"),
    Axis("cb_max_memory_percent", "continuous batching: share of free memory for the cache "
         "(load.cb.max_memory_percent)", default=None, id_label="mem{}"),
    Axis("cb_max_requests_per_batch", "continuous batching: requests per step (load.cb.max_requests_per_batch)",
         default=None, id_label="mrb{}"),
    Axis("cb_scheduler_type", "continuous batching: the scheduler, fifo or prefill_first (load.cb.scheduler_type)",
         CB_SCHEDULERS, None, "sched-{}"),
    Axis("cb_allow_block_sharing", "continuous batching: prefix reuse between requests "
         "(load.cb.allow_block_sharing)", (False, True), None, "sharing-{}"),
    Axis("cb_use_cuda_graph", "continuous batching: CUDA graphs (load.cb.use_cuda_graph; GPU only)", (False, True),
         None, "graphs-{}"),
    Axis("load_level", "a load point's requests per second (poisson, constant) or requests in flight "
         "(concurrency); null on a static point", series_prefix="level"),
)
AXES: dict[str, Axis] = {a.name: a for a in AXES_TABLE}
SWEPT = tuple(a.name for a in AXES_TABLE if a.swept)  # the sweep's product, in this order
POINT_COLUMNS = tuple(a.name for a in AXES_TABLE)  # the record's point fields that tell points apart
SERIES_FIELDS = tuple(a for a in POINT_COLUMNS if a != "batch_size")  # batch size is the figures' x axis
CB_AXES = tuple(a.name for a in AXES_TABLE if a.name.startswith("cb_"))
# options: the axes with a default, shown in ids only where they differ from it
ID_OPTIONS = tuple(a for a in AXES_TABLE if a.default is not NO_DEFAULT)
GROUP_OPTIONS = tuple(a for a in ID_OPTIONS if a.loads_model)
SHAPE_OPTIONS = tuple(a for a in ID_OPTIONS if not a.loads_model)  # what a series' shape shows beyond in/out/decoding


def options_suffix(values: dict[str, Any], axes: tuple[Axis, ...]) -> str:
    """The id suffix of the options among `axes` whose value is not the default: /cache-static/attn-eager."""
    return "".join(a.id_part(values.get(a.name, a.default)) for a in axes)
