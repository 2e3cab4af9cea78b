"""Backends that run the agent as a local subprocess: ``cpu`` and ``cuda[:N]``.

Both run the same zipapp, with this interpreter or the one given as
``--agent-python`` (say a virtual environment that has PyTorch); they differ
only in the device string the agent's runtime receives.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from typing import Optional

from hwprof.errors import DeviceError
from hwprof.latency.backends.base import Backend, report_from_hello
from hwprof.latency.backends.bundle import local_agent_path
from hwprof.latency.backends.session import AgentSession, LineReader, Transport


class PipeTransport(Transport):
    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0,
                                     start_new_session=True)
        self._out = LineReader(self.proc.stdout.readline)
        self._err: deque = deque(maxlen=50)
        threading.Thread(target=self._drain_err, daemon=True).start()

    def _drain_err(self):
        for line in iter(self.proc.stderr.readline, b""):
            self._err.append(line.decode("utf-8", "replace"))

    def write_line(self, line: str) -> None:
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise OSError(str(e)) from None

    def read_line(self, timeout: float) -> Optional[str]:
        return self._out.get(timeout)

    def stderr_tail(self) -> str:
        return "".join(self._err)

    def exit_cause(self) -> str:
        try:
            code = self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return ""
        if code >= 0:
            return ""
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return (f"killed by {name}; if no one sent it, the system ran out of memory "
                    f"(the kernel's OOM killer: see dmesg)")
        return f"killed by {name}"

    def close(self, wait: float = 5.0) -> None:
        try:
            self.proc.stdin.close()
        except Exception:
            pass
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class LocalBackend(Backend):
    def _python(self) -> str:
        """The agent's interpreter: --agent-python (e.g. a venv with torch) or this one."""
        python = self.options.extra.get("agent_python")
        if not python:
            return sys.executable
        if os.sep not in python:
            python = shutil.which(python) or python
        if not (os.path.isfile(python) and os.access(python, os.X_OK)):
            raise DeviceError(f"--agent-python {python!r} is not an executable file; give the path "
                              f"of a Python 3.8+ interpreter that has the runtime "
                              f"({self.options.runtime}) installed")
        return python

    def _argv(self, *extra: str) -> list[str]:
        return [self._python(), str(local_agent_path()), *extra]

    def open(self, config: dict) -> AgentSession:
        sess = AgentSession(PipeTransport(self._argv()), self.label, self.options.op_timeout,
                            self.options.start_timeout)
        sess.start({**config, "runtime": self.options.runtime, "device": self.agent_device})
        return sess

    def check(self) -> dict:
        argv = self._argv("--check", "--runtime", self.options.runtime,
                          "--device", self.agent_device)
        try:
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=self.options.start_timeout)
        except subprocess.TimeoutExpired:
            return report_from_hello(self.label, None, ["the agent did not answer in time"])
        hello = None
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                hello = json.loads(line)
        problems = [] if hello else [f"the agent failed to start: {p.stderr.strip()[-300:]}"]
        return report_from_hello(self.label, hello, problems)


class CpuBackend(LocalBackend):
    scheme = "cpu"

    def __init__(self, device, options=None):
        if device != "cpu":
            raise DeviceError(f"the cpu device takes no index: use 'cpu', not {device!r}")
        super().__init__(device, options)


class CudaBackend(LocalBackend):
    scheme = "cuda"

    def __init__(self, device, options=None):
        m = re.fullmatch(r"cuda(?::(\d+))?", device)
        if not m:
            raise DeviceError(f"bad CUDA device {device!r}; expected cuda or cuda:N")
        self.index = int(m.group(1) or os.environ.get("HWPROF_CUDA_DEVICE", 0))
        super().__init__(device, options)

    @property
    def agent_device(self) -> str:
        return f"cuda:{self.index}"
