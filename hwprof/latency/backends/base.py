"""The backend contract: open an agent session on a device, or report on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwprof.latency.backends.session import AgentSession


@dataclass
class BackendOptions:
    """Settings every backend understands; ``extra`` holds backend-specific ones."""

    runtime: str = "nnabla"
    op_timeout: float = 120.0
    start_timeout: float = 180.0
    extra: dict[str, Any] = field(default_factory=dict)


class Backend:
    """A device that can run the agent. Subclasses set ``scheme``."""

    scheme = ""

    def __init__(self, device: str, options: BackendOptions | None = None):
        self.device = device
        self.options = options or BackendOptions()

    @property
    def label(self) -> str:
        """How the device is named in rows, logs and errors (never credentials)."""
        return self.device

    @property
    def agent_device(self) -> str:
        """What the agent's runtime calls this device (``cpu``, ``cuda:0``)."""
        return "cpu"

    def open(self, config: dict) -> AgentSession:
        """Start the agent and return the started session (hello received)."""
        raise NotImplementedError

    def check(self) -> dict:
        """The ``check-device`` report: ok, device, fingerprint, python, runtime, problems."""
        raise NotImplementedError


def report_from_hello(label: str, hello: dict | None, problems: list[str]) -> dict:
    """Shape an agent hello (or its absence) into the check-device report."""
    hello = hello or {}
    env = hello.get("environment") or {}
    problems = list(problems) + list(hello.get("problems") or [])
    runtime = None
    if env.get("runtime") and env.get("runtime_version"):  # null when it is not importable
        runtime = {"name": env["runtime"], "version": env.get("runtime_version")}
    return {"ok": bool(hello.get("ok")) and not problems, "device": label,
            "fingerprint": hello.get("fingerprint"), "fingerprint_id": hello.get("fingerprint_id"),
            "python": env.get("python"), "runtime": runtime,
            "runtime_usable": bool(hello.get("ok")), "environment": env, "problems": problems}
