"""Models a run cannot get, found before anything starts instead of in the worker after the hub client's retries
(five, about 23 s of back-off, with no setting in huggingface_hub to shorten them): a hub id whose config.json is not
in the local cache fails with how to get it when the hub is offline (HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1), or
when one bounded request to the hub (HF_ENDPOINT respected, through the hub client's own proxies) gets no answer.
A cached model never waits on the network: transformers uses the cache at once when the hub does not answer.
"""

from __future__ import annotations

import os
import threading

from llmbench.config.checks import looks_like_path
from llmbench.config.scenario import Scenario
from llmbench.core.builtin_models import builtin_names

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
PROBE_TIMEOUT_S = 3.0  # the hub's answer to one HEAD request; DNS included (the probe runs in a thread)
DEFAULT_ENDPOINT = "https://huggingface.co"  # huggingface_hub's, when HF_ENDPOINT is not set


def hub_offline() -> str | None:
    """The variable that puts the hub offline, if one does."""
    return next((v for v in OFFLINE_VARS if os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")),
                None)


def hub_endpoint() -> str:
    """Where the worker's hub client will go: read as huggingface_hub reads it when the worker imports it."""
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def unavailable_models(scenario: Scenario) -> list[str]:
    """One line per model that cannot load here (not cached, and the hub offline or unreachable); [] otherwise."""
    missing = [m for m in scenario.models if not _local(m.id) and not _cached(m.id, m.revision)]
    if not missing:
        return []
    offline = hub_offline()
    why = f"the hub is offline ({offline}=1)" if offline else _unreachable(hub_endpoint())
    if why is None:
        return []  # the hub answers: the worker downloads
    return [f"model {m.id!r}{f' at revision {m.revision}' if m.revision else ''} is not in the local Hugging Face "
            f"cache and {why}. Get it on a machine with network: `hf download {m.id}`"
            f"{f' --revision {m.revision}' if m.revision else ''} (copy ~/.cache/huggingface/hub over), or point "
            "models[].id at a local folder" for m in missing]


def _local(model_id: str) -> bool:
    return model_id in builtin_names() or looks_like_path(model_id) or os.path.isdir(os.path.expanduser(model_id))


def _cached(model_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model_id, "config.json", revision=revision), str)


def _unreachable(endpoint: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the hub cannot be reached ("the hub cannot be reached (...)"), or None when it answers anything at all
    (any HTTP status: whether the model is there is the download's to say). One request, no retries, bounded."""
    from huggingface_hub.utils import get_session

    answer: list[BaseException | None] = []

    def probe() -> None:
        try:
            get_session().head(endpoint, timeout=timeout_s)
            answer.append(None)
        except Exception as exc:  # noqa: BLE001 - whatever stops the request, the hub is not there
            answer.append(exc)

    thread = threading.Thread(target=probe, name="llmbench-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 1)  # a DNS lookup ignores the request's timeout
    if answer and answer[0] is None:
        return None
    reason = (str(answer[0]) or type(answer[0]).__name__) if answer else f"no answer within {timeout_s:g} s"
    return f"the hub cannot be reached ({endpoint}: {reason})"
