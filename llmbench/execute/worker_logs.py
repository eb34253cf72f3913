"""The workers' stderr logs (run_dir/logs/): known third-party warnings told apart from what a user must read.
The files keep every line; what llmbench shows (a crashed point's stderr tail, the end-of-run line) counts the
known noise instead of printing it. Plain text in, plain text out.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

STDERR_TAIL_BYTES = 12000  # a faulthandler dump of every thread plus its module list fits

# pattern -> what it is, in words a user can act on (or safely ignore)
THIRD_PARTY_NOISE: dict[re.Pattern[str], str] = {
    re.compile(r"^Failed to load .*torchao/_C.*\.so"): "torchao: an optional kernel library for other GPUs",
    re.compile(r"^W\d{4} [\d:.]+ \d+ .*torch/utils/_pytree\.py:\d+\] .* is deprecated"):
        "torch: _pytree deprecation warnings from a library's registrations",
    re.compile(r"No module named 'kernels'"): "bitsandbytes: the optional `kernels` package is not installed",
}


def noise_kind(line: str) -> str | None:
    return next((what for pattern, what in THIRD_PARTY_NOISE.items() if pattern.search(line)), None)


def filter_noise(text: str, path: Path | None = None) -> str:
    """`text` without the known third-party lines, and one line that counts them and says where they are."""
    kept, counts = [], Counter()
    for line in text.splitlines():
        kind = noise_kind(line)
        if kind:
            counts[kind] += 1
        else:
            kept.append(line)
    if counts:
        where = f"; full text in {path}" if path else ""
        kept.append(f"({sum(counts.values())} known third-party warning lines left out: "
                    + "; ".join(f"{n}× {what}" for what, n in counts.items()) + where + ")")
    return "\n".join(kept)


def summarize_logs(log_dir: Path) -> str | None:
    """One line on the logs of a run: how many known third-party warnings and other lines they hold; None when
    they are empty."""
    counts: Counter[str] = Counter()
    other = 0
    for path in sorted(Path(log_dir).glob("*.stderr.log")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if kind := noise_kind(line):
                counts[kind] += 1
            elif line.strip():
                other += 1
    if not counts and not other:
        return None
    noise = (f"{sum(counts.values())} known third-party warning lines (harmless here: "
             + "; ".join(counts) + ")") if counts else ""
    rest = f"{other} other line{'s' * (other != 1)}" if other else ""
    return f"worker logs: {' and '.join(x for x in (noise, rest) if x)}; full text in {log_dir}"


def stderr_tail(path: Path) -> str:
    """The end of a worker's stderr for its error record, known third-party warnings counted, not shown."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - STDERR_TAIL_BYTES))
            return filter_noise(f.read().decode("utf-8", "replace"), path)
    except OSError:
        return ""
