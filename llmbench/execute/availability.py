"""Models a run cannot get: with the hub offline (HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1), a hub id whose
config.json is not in the local cache fails before anything starts, with how to get it, instead of failing in the
worker after the hub client's retries. Only the cache on disk is looked at; nothing goes to the network.
"""

from __future__ import annotations

import os

from llmbench.config.checks import looks_like_path
from llmbench.config.scenario import Scenario
from llmbench.core.builtin_models import builtin_names


def hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def unavailable_models(scenario: Scenario) -> list[str]:
    """One line per model that cannot load here (offline and not cached); [] when online or all are there."""
    if not hub_offline():
        return []
    from huggingface_hub import try_to_load_from_cache

    problems = []
    for m in scenario.models:
        if m.id in builtin_names() or looks_like_path(m.id) or os.path.isdir(os.path.expanduser(m.id)):
            continue
        found = try_to_load_from_cache(m.id, "config.json", revision=m.revision)
        if not isinstance(found, str):
            at = f" at revision {m.revision}" if m.revision else ""
            problems.append(f"model {m.id!r}{at} is not in the local Hugging Face cache and the hub is offline "
                            f"(HF_HUB_OFFLINE=1). Get it on a machine with network: `hf download {m.id}`"
                            f"{f' --revision {m.revision}' if m.revision else ''} (copy ~/.cache/huggingface/hub "
                            "over), or point models[].id at a local folder")
    return problems
