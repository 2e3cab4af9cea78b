"""Backends registered by name; a device string picks one.

    cpu                      local process
    cuda, cuda:N             local process in the CUDA context of GPU N
    ssh://[user@]host[:port] a board reached over SSH

Entries are ``module:Class`` strings so asking for ``cpu`` never imports
paramiko.
"""

from __future__ import annotations

import importlib
import re

from hwprof.errors import DeviceError
from hwprof.latency.backends.base import Backend, BackendOptions

_BACKENDS: dict[str, tuple[str, str]] = {
    "cpu": ("hwprof.latency.backends.local:CpuBackend", "cpu"),
    "cuda": ("hwprof.latency.backends.local:CudaBackend", "cuda, cuda:N"),
    "ssh": ("hwprof.latency.backends.ssh:SshBackend", "ssh://[user@]host[:port]"),
}


def register(scheme: str, target: str, usage: str) -> None:
    _BACKENDS[scheme] = (target, usage)


def scheme_of(device: str) -> str:
    if "://" in device:
        return device.split("://", 1)[0]
    m = re.fullmatch(r"([a-z]+)(:\d+)?", device)
    return m.group(1) if m else device


def valid_devices() -> str:
    return ", ".join(usage for _, usage in _BACKENDS.values())


def get_backend(device: str, options: BackendOptions | None = None) -> Backend:
    scheme = scheme_of(device)
    if scheme not in _BACKENDS:
        raise DeviceError(f"unknown device {device!r}; valid devices: {valid_devices()}")
    target = _BACKENDS[scheme][0]
    mod_name, cls_name = target.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise DeviceError(f"the {scheme} backend cannot be loaded ({e}); "
                          f"install hwprof's '{scheme}' extra: pip install 'hwprof[{scheme}]'") from None
    return getattr(mod, cls_name)(device, options)
