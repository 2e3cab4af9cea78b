"""The ``ssh://[user@]host[:port]`` backend: run the agent on a board reached over SSH.

Each :meth:`SshBackend.open` connects (honouring ``~/.ssh/config`` and
``~/.ssh/known_hosts``), copies the agent zipapp over SFTP into a versioned
cache directory on the board (``~/.cache/hwprof/hwprof-agent-<hash>.pyz``,
reused while unchanged), and runs it with the board's Python. The build
orchestration reopens a backend whose link dropped; before the new agent
starts, any agent the dropped link left running is killed.

Options (``BackendOptions.extra``): ``ssh_key`` (private key file),
``remote_python`` (the board's interpreter, default ``python3``; may carry
arguments, e.g. ``"/opt/venv/bin/python -u"``), ``accept_new_host_key``
(record an unknown host key), ``remote_cache_dir`` (default
``.cache/hwprof``, relative to the remote home), ``connect_timeout``.
"""

from __future__ import annotations

import json
import shlex
import threading

from hwprof.errors import DeviceError
from hwprof.latency.backends.base import Backend, report_from_hello
from hwprof.latency.backends.bundle import agent_bytes, agent_filename
from hwprof.latency.backends.session import AgentLost, AgentSession
from hwprof.latency.backends.ssh_config import resolve

NOT_FOUND = 127


class SshBackend(Backend):
    scheme = "ssh"

    def __init__(self, device, options=None):
        super().__init__(device, options)
        extra = self.options.extra or {}
        self.target = resolve(device, extra.get("ssh_key"))
        self.python = extra.get("remote_python") or "python3"
        try:
            if not shlex.split(self.python):
                raise ValueError("empty")
        except ValueError as e:
            raise DeviceError(f"bad --remote-python {self.python!r}: {e}") from None
        self.accept_new = bool(extra.get("accept_new_host_key"))
        self.cache_dir = extra.get("remote_cache_dir") or ".cache/hwprof"
        self.connect_timeout = float(extra.get("connect_timeout") or 15.0)
        self._orphans: set[int] = set()
        self._lock = threading.Lock()
        self.deploys = 0  # uploads done by this backend (0 when the board's copy was reused)

    @property
    def label(self) -> str:
        return self.target.label

    # -- connection --------------------------------------------------------------------------

    def _note_orphan(self, pid: int) -> None:
        with self._lock:
            self._orphans.add(pid)

    def _connect(self):
        from hwprof.latency.backends import ssh_transport as st
        client = st.connect(self.target, self.accept_new, self.connect_timeout)
        try:
            with self._lock:
                orphans = sorted(self._orphans)
            if orphans:  # agents a dropped link left behind: never two runners on one board
                st.run(client, st.kill_command(orphans), self.connect_timeout)
                with self._lock:
                    self._orphans.difference_update(orphans)
            path, uploaded = st.deploy(client, self.cache_dir, agent_filename(), agent_bytes())
            self.deploys += uploaded
        except DeviceError:
            client.close()
            raise
        except Exception as e:
            alive = client.get_transport() is not None and client.get_transport().is_active()
            client.close()
            if alive:  # the board said no: permissions, full disk, no SFTP subsystem...
                raise DeviceError(f"{self.label}: cannot copy the agent into {self.cache_dir} on "
                                  f"the board over SFTP: {e or type(e).__name__}") from None
            raise AgentLost(f"{self.label}: connection lost while preparing the board: "
                            f"{e or type(e).__name__}") from None
        return client, path

    def _python_missing(self) -> str:
        return (f"the board has no Python at {self.python!r}: install Python 3 there or pass "
                f"--remote-python PATH")

    def _board_problems(self, problems: list[str]) -> list[str]:
        out = []
        for p in problems:
            if "not importable" in p and self.options.runtime in p and "CUDA" not in p:
                rt = self.options.runtime
                out.append(f"{rt} is not installed for {self.python} on the board: install {rt} "
                           f"on the board: pip install {rt} (or pass --remote-python with a "
                           f"Python that has it)")
            else:
                out.append(p)
        return out

    # -- Backend API ---------------------------------------------------------------------------

    def open(self, config: dict) -> AgentSession:
        from hwprof.latency.backends import ssh_transport as st
        client, path = self._connect()
        try:
            transport = st.ChannelTransport(client, st.agent_command(self.python, path),
                                            on_orphan=self._note_orphan,
                                            kill_timeout=self.connect_timeout)
        except Exception as e:
            client.close()
            raise AgentLost(f"{self.label}: cannot start the agent: {e or type(e).__name__}") from None
        sess = AgentSession(transport, self.label, self.options.op_timeout,
                            self.options.start_timeout)
        try:
            sess.start({**config, "runtime": self.options.runtime, "device": self.agent_device})
        except AgentLost:
            status = transport.exit_status()
            transport.kill()
            if status == NOT_FOUND:
                raise DeviceError(f"{self.label}: {self._python_missing()}") from None
            raise
        except DeviceError:
            transport.kill()
            problems = self._board_problems(sess.hello.get("problems") or [])
            if problems:
                raise DeviceError(f"{self.label}: board not usable: " + "; ".join(problems)) from None
            raise
        except BaseException:
            transport.kill()
            raise
        return sess

    def check(self) -> dict:
        from hwprof.latency.backends import ssh_transport as st
        try:
            client, path = self._connect()
        except DeviceError as e:
            return report_from_hello(self.label, None, [str(e)])
        try:
            cmd = st.agent_command(self.python, path, "--check", "--runtime", self.options.runtime,
                                   "--device", self.agent_device)
            status, out, err = st.run(client, cmd, self.options.start_timeout)
        except Exception as e:
            return report_from_hello(self.label, None, [f"{self.label}: the check did not finish: "
                                                        f"{e or type(e).__name__}"])
        finally:
            client.close()
        if status == NOT_FOUND:
            return report_from_hello(self.label, None, [self._python_missing()])
        hello = None
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    hello = json.loads(line)
                except json.JSONDecodeError:
                    pass
        if hello is None:
            tail = err.strip().splitlines()[-1:] or [f"exit status {status}"]
            return report_from_hello(self.label, None,
                                     [f"the agent failed to start with {self.python}: {tail[0]}"])
        hello["problems"] = self._board_problems(hello.get("problems") or [])
        return report_from_hello(self.label, hello, [])
