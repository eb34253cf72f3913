"""llmbench: benchmark and profile Hugging Face transformers text generation.

Importing the package is cheap on purpose: torch, transformers and pynvml are imported lazily by the
modules that need them (engine, timing, sampler), never here.
"""

__version__ = "0.1.0"

# Version of the records.jsonl / env.json layout. Bump it (and add a migration in records.py)
# whenever a field changes meaning or moves.
SCHEMA_VERSION = 2  # 2: memory_sources -> sources; device_stats, flags, quality, compile_s added
