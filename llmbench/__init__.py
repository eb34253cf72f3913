"""llmbench: benchmark and profile Hugging Face transformers text generation.

The pipeline, one subpackage per stage (docs/architecture.md): core (the record type and the registries) →
config (scenario → points) → measure (inside a worker) → execute (the run directory) → analysis (reading
records) → report → cli. Importing the package is cheap on purpose: torch, transformers and pynvml are imported
lazily by the modules that need them, never here.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "SCHEMA_VERSION":  # the record's layout version, declared with the record type
        from llmbench.core.record import SCHEMA_VERSION

        return SCHEMA_VERSION
    raise AttributeError(f"module 'llmbench' has no attribute {name!r}")
