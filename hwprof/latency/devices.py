"""Names of devices for people: one rule for every place that prints one."""

from __future__ import annotations

from typing import Any, Mapping, Optional


def hardware_name(info: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The most specific hardware name a device fingerprint holds: the GPU, else the board
    model, else the CPU model; None when it holds none."""
    info = info or {}
    return info.get("gpu_name") or info.get("board_model") or info.get("cpu_model") or None
