"""The host side of the agent conversation, over any line transport.

A backend supplies a :class:`Transport` (a local pipe, an SSH channel...);
:class:`AgentSession` speaks the JSON-lines protocol of
:mod:`hwprof.latency.backends.agent.main` over it, with a timeout on every
answer so a hung device is detected rather than waited on forever.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any, Callable, Collection, Optional

from hwprof.errors import DeviceError


def last_error_line(stderr: str) -> str:
    """The last line of an agent's stderr that is not a runtime's log chatter (nnabla logs
    "[nnabla][INFO]: ..." lines): the likeliest cause of its death, or ''."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if "][INFO]" not in ln and "][DEBUG]" not in ln]
    return useful[-1] if useful else ""


class AgentLost(DeviceError):
    """The agent's link ended (process died, connection dropped)."""


class AgentHung(AgentLost):
    """The agent produced no answer within the timeout; it has been killed."""


class Transport:
    """A bidirectional line stream to an agent process."""

    def write_line(self, line: str) -> None:
        raise NotImplementedError

    def read_line(self, timeout: float) -> Optional[str]:
        """Next line (without newline); ``None`` at end of stream; raises
        :class:`TimeoutError` when nothing arrives in ``timeout`` seconds."""
        raise NotImplementedError

    def stderr_tail(self) -> str:
        return ""

    def exit_cause(self) -> str:
        """How the agent process ended, when that says more than its stderr (a signal), or ''."""
        return ""

    def close(self, wait: float = 5.0) -> None:
        """Let the agent exit, killing it when it does not within ``wait``."""
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError


class LineReader:
    """Feeds lines from a blocking ``readline`` into a queue on a daemon thread."""

    def __init__(self, readline: Callable[[], Any]):
        self.q: queue.Queue = queue.Queue()
        self._t = threading.Thread(target=self._pump, args=(readline,), daemon=True)
        self._t.start()

    def _pump(self, readline):
        try:
            while True:
                line = readline()
                if not line:
                    break
                self.q.put(line.decode("utf-8", "replace") if isinstance(line, bytes) else line)
        except Exception:  # the stream broke: same as end of stream
            pass
        self.q.put(None)

    def get(self, timeout: float) -> Optional[str]:
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            self.q.put(None)  # keep reporting EOF
            return None
        return line.rstrip("\r\n")


class AgentSession:
    """One running agent: hello, measure ops one at a time, goodbye."""

    def __init__(self, transport: Transport, label: str, op_timeout: float = 120.0,
                 start_timeout: float = 120.0):
        self.t, self.label = transport, label
        self.op_timeout, self.start_timeout = op_timeout, start_timeout
        self.hello: dict = {}

    def _next(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.t.read_line(max(0.0, left))
            except TimeoutError:
                self.t.kill()
                raise AgentHung(f"{self.label}: no answer from the agent within {timeout:.0f} s; "
                                f"it was stopped") from None
            if line is None:
                cause = last_error_line(self.t.stderr_tail()) or self.t.exit_cause()
                raise AgentLost(f"{self.label}: the agent stopped unexpectedly"
                                + (f": {cause}" if cause else ""))
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue

    def start(self, config: dict) -> dict:
        self.t.write_line(json.dumps({"type": "config", **config}))
        msg = self._next(self.start_timeout)
        if msg.get("type") != "hello":
            raise AgentLost(f"{self.label}: expected the agent's hello, got {msg.get('type')!r}")
        self.hello = msg
        if not msg.get("ok"):
            self.t.close()
            raise DeviceError(f"{self.label}: device not usable: " + "; ".join(msg["problems"]))
        return msg

    def measure_group(self, group_id: str, ops: list[tuple[str, dict]], *,
                      level_ms: float | None = None, seed: int = 0,
                      on_progress: Callable[[dict], None] | None = None,
                      untimed: Collection[str] = ()) -> dict:
        """Measure ``ops`` ((id, plan) pairs) as one interleaved group; the agent's answer.

        The ops whose ids are in ``untimed`` are built and warmed up in their place but
        not timed (an extra pass's context: buildplan.plan_extra); the answer has no result
        for them. The agent sends progress lines while it works, so the op timeout
        bounds the silence between two of them, not the whole group.
        """
        msg = {"type": "measure_group", "id": group_id, "level_ms": level_ms, "seed": seed,
               "ops": [{"id": i, "plan": p, **({"timed": False} if i in untimed else {})}
                       for i, p in ops]}
        try:
            self.t.write_line(json.dumps(msg))
        except (OSError, EOFError) as e:
            raise AgentLost(f"{self.label}: link to the agent broke: {e}") from None
        while True:
            msg = self._next(self.op_timeout)
            if msg.get("id") != group_id:
                continue
            if msg.get("type") == "group_result":
                return msg
            if msg.get("type") == "progress" and on_progress is not None:
                on_progress(msg)

    def close(self) -> None:
        try:
            self.t.write_line(json.dumps({"type": "exit"}))
        except Exception:
            pass
        self.t.close()
