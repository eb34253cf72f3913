"""The device a worker measures on, chosen once from the scenario's request (`resolve_device`), and what is done to
it outside the timed calls: synchronising before a clock starts, emptying caches after an OOM, and telling an
out-of-memory error from any other. The only place that asks torch about CUDA devices in a worker.
"""

from __future__ import annotations

from typing import Any


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine."""


def resolve_device(requested: str) -> Any:
    import torch

    if requested == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {requested!r} asked for, but torch sees no CUDA device "
                              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        index = int(requested.split(":")[1]) if ":" in requested else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return torch.device("cuda", index)
    return torch.device("cpu")


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator refusing a tensor."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


def empty_caches(device: Any) -> None:
    """After an OOM: drop what the failed call left behind so the next point starts clean."""
    import gc

    import torch

    gc.collect()
    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.empty_cache()


def synchronize(device: Any) -> None:
    """Wait for the device (a no-op on a CPU): used outside the timed region only."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)
