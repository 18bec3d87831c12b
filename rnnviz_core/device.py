"""Choosing where the computation runs: CUDA, then Apple MPS, then the CPU."""
from __future__ import annotations

import torch

from .errors import InputError

__all__ = ["resolve_device", "device_label"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device to compute on.

    ``"auto"`` (or ``None``) picks CUDA when a GPU is visible, then Apple's MPS, then the CPU.
    An explicit device ("cpu", "cuda", "cuda:1", "mps") must be available here, otherwise an
    :class:`InputError` says which devices are.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"'{device}' is not a device name. Use 'auto', 'cpu', 'cuda' (or 'cuda:0', ...) or 'mps'."
        ) from exc
    available = available_devices()
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"CUDA was asked for, but no CUDA GPU is available here. Use one of: {', '.join(available)}.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(
                f"GPU {dev.index} was asked for, but only {torch.cuda.device_count()} CUDA GPU(s) exist here. "
                f"Use one of: {', '.join(available)}."
            )
    elif dev.type == "mps":
        if not _mps_available():
            raise InputError(f"Apple MPS was asked for, but it is not available here. Use one of: {', '.join(available)}.")
    elif dev.type != "cpu":
        raise InputError(f"Device '{device}' is not supported. Use one of: {', '.join(available)}.")
    return dev


def available_devices() -> list[str]:
    """Names of the devices usable here, "auto" first."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def device_label(device: str | torch.device | None = "auto") -> str:
    """A short human label for a device: "CPU", "CUDA (NVIDIA H100)", "Apple MPS"."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(dev)})"
    if dev.type == "mps":
        return "Apple MPS"
    return "CPU"
