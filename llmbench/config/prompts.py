"""Prompt files: a scenario's `prompt: {kind: file}` read into texts, for the cross-field check at load time and
for the engine's inputs at run time.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_prompt_file(path: Path, field: str = "prompt") -> list[str]:
    """Prompts of a .txt (one per non-empty line) or .jsonl (`field` of each object) file."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix == ".jsonl":
        prompts = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {n}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
                raise ValueError(f"line {n}: no string field {field!r}")
            prompts.append(obj[field])
    else:
        prompts = [line for line in text.splitlines() if line.strip()]
    if not prompts:
        raise ValueError("holds no prompt")
    return prompts
