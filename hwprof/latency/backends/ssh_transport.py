"""The SSH plumbing of the ssh backend: connect (host keys, auth), deploy, run, kill.

Every remote command is assembled from :func:`shlex.quote`-d words, so paths,
interpreters and cache directories cannot inject shell syntax. The agent runs
as ``exec sh -c 'echo hwprof-pid $$; exec PYTHON AGENT'``: its first output
line is its own PID, which is how a hung agent is killed (``kill -KILL`` over a
second channel) and how an agent orphaned by a dropped link is found and
killed after reconnecting.
"""

from __future__ import annotations

import logging
import os
import posixpath
import secrets
import shlex
import socket
import threading
from collections import deque
from typing import Callable, Optional

import paramiko

from hwprof.errors import DeviceError
from hwprof.latency.backends.session import LineReader, Transport
from hwprof.latency.backends.ssh_config import SshTarget

# paramiko logs a dropped connection with a traceback; without this handler the
# logging module's last-resort handler would print it to stderr.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

AGENT_PREFIX = "hwprof-agent-"
PID_TAG = b"hwprof-pid "


class HostKeyError(DeviceError):
    """The board's host key is unknown or changed."""


def _fp(key: paramiko.PKey) -> str:
    return key.fingerprint if hasattr(key, "fingerprint") else key.get_name()


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, target: SshTarget):
        self.target = target

    def missing_host_key(self, client, hostname, key):
        t = self.target
        port = f"-p {t.port} " if t.port != 22 else ""
        keyscan = f"ssh-keyscan {port}{shlex.quote(t.hostname)}"
        login = f"ssh {port}{shlex.quote(t.user)}@{shlex.quote(t.alias)}"
        raise HostKeyError(
            f"{t.label}: the host key of {t.host_key_name} is not known ({key.get_name()} "
            f"{_fp(key)}); refusing to connect. Check the fingerprint on the board (ssh-keygen -lf "
            f"/etc/ssh/ssh_host_*_key.pub), then add it to {t.known_hosts[0]} (e.g. "
            f"`{login}` once, or `{keyscan} >> {t.known_hosts[0]}`), or pass "
            f"--accept-new-host-key to trust it now")


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """OpenSSH's ``accept-new``: record an unknown key; a changed key is still refused."""

    def __init__(self, target: SshTarget):
        self.target = target

    def missing_host_key(self, client, hostname, key):
        path = self.target.known_hosts[0]
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        with open(path, "a") as f:
            f.write(f"{self.target.host_key_name} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(self.target.host_key_name, key.get_name(), key)


def connect(target: SshTarget, accept_new: bool = False, timeout: float = 15.0) -> paramiko.SSHClient:
    """An authenticated client, or a :class:`DeviceError` that says what went wrong."""
    client = paramiko.SSHClient()
    for path in target.known_hosts:
        if os.path.isfile(path):
            try:
                client.load_host_keys(path)
            except (OSError, paramiko.SSHException) as e:
                raise DeviceError(f"cannot read known hosts file {path}: {e}") from None
    accept = accept_new or target.accept_new
    client.set_missing_host_key_policy(_AcceptNew(target) if accept else _RefuseUnknown(target))
    where = target.label
    try:
        sock = paramiko.ProxyCommand(target.proxy_command) if target.proxy_command else None
        client.connect(target.hostname, port=target.port, username=target.user, sock=sock,
                       key_filename=target.key_files or None, allow_agent=True,
                       look_for_keys=True, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, channel_timeout=timeout)
    except HostKeyError:
        client.close()
        raise
    except paramiko.BadHostKeyException as e:
        client.close()
        raise HostKeyError(
            f"{where}: the host key of {target.host_key_name} HAS CHANGED (the board offers "
            f"{e.key.get_name()} {_fp(e.key)}, {target.known_hosts[0]} has {_fp(e.expected_key)}); "
            f"refusing to connect: this can mean someone is intercepting the connection. If the "
            f"board was reinstalled, remove the old key with `ssh-keygen -R "
            f"{shlex.quote(target.host_key_name)}` and connect again") from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise DeviceError(f"{where}: the private key is protected by a passphrase; load it into "
                          f"ssh-agent (ssh-add) so hwprof can use it") from None
    except paramiko.AuthenticationException:
        client.close()
        raise _auth_error(target) from None
    except socket.gaierror:
        client.close()
        raise DeviceError(f"{where}: unknown host {target.hostname!r} (name does not resolve)") from None
    except (socket.timeout, TimeoutError):
        client.close()
        raise DeviceError(f"{where}: connection timed out after {timeout:.0f} s") from None
    except paramiko.ssh_exception.NoValidConnectionsError:
        client.close()
        raise DeviceError(f"{where}: connection refused (is sshd running on port "
                          f"{target.port}?)") from None
    except (paramiko.SSHException, OSError, EOFError) as e:
        client.close()
        if "No authentication methods" in str(e):  # no key and no agent to offer
            raise _auth_error(target) from None
        if "protocol banner" in str(e):  # something listens there, but it does not speak SSH
            raise DeviceError(f"{where}: port {target.port} accepted the connection but sent no SSH "
                              f"greeting within {timeout:.0f} s; is it an SSH server (and not, "
                              f"say, a web server or a firewall that holds connections)?") from None
        raise DeviceError(f"{where}: cannot connect: {e or type(e).__name__}") from None
    client.get_transport().set_keepalive(10)
    return client


def _auth_error(target: SshTarget) -> DeviceError:
    tried = ", ".join(target.key_files) or "the default keys in ~/.ssh"
    return DeviceError(f"{target.label}: authentication failed for user {target.user!r} (tried "
                       f"{tried} and the ssh-agent); pass --ssh-key FILE or set IdentityFile "
                       f"in ~/.ssh/config")


def agent_command(python: str, agent_path: str, *args: str) -> str:
    """The remote command line that runs the agent under its own reported PID."""
    words = [*shlex.split(python), agent_path, *args]
    inner = "echo hwprof-pid $$; exec " + " ".join(shlex.quote(w) for w in words)
    return "exec /bin/sh -c " + shlex.quote(inner)


def kill_command(pids: list[int]) -> str:
    """Kill agents by PID, but only processes that are still hwprof agents."""
    parts = []
    for pid in pids:
        pid = int(pid)
        parts.append(f"if grep -q {AGENT_PREFIX} /proc/{pid}/cmdline 2>/dev/null; "
                     f"then kill -KILL {pid}; fi")
    return "; ".join(parts) + "; true"


def run(client: paramiko.SSHClient, command: str, timeout: float, stdin: bytes = b""
        ) -> tuple[int, str, str]:
    """Run a command to completion: (exit status, stdout, stderr)."""
    chan = client.get_transport().open_session(timeout=timeout)
    try:
        chan.settimeout(timeout)
        chan.exec_command(command)
        if stdin:
            chan.sendall(stdin)
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        while True:
            data = chan.recv(65536)
            if not data:
                break
            out += data
        while True:
            data = chan.recv_stderr(65536)
            if not data:
                break
            err += data
        if not chan.status_event.wait(timeout):
            raise socket.timeout()
        return chan.recv_exit_status(), out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    finally:
        chan.close()


def deploy(client: paramiko.SSHClient, cache_dir: str, name: str, data: bytes) -> tuple[str, bool]:
    """Copy ``data`` to ``cache_dir/name`` on the board unless an equal-sized copy is there.

    Returns (absolute remote path, whether it was uploaded now). The upload goes
    to a temporary name first and is renamed into place, so a dropped link never
    leaves a truncated agent behind under the real name.
    """
    sftp = client.open_sftp()
    try:
        home = sftp.normalize(".")
        base = cache_dir if cache_dir.startswith("/") else posixpath.join(home, cache_dir)
        base = posixpath.normpath(base)
        path = posixpath.join(base, name)
        try:
            if sftp.stat(path).st_size == len(data):
                return path, False
        except FileNotFoundError:
            pass
        _makedirs(sftp, base)
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        with sftp.open(tmp, "wb") as f:
            f.set_pipelined(True)
            f.write(data)
        sftp.chmod(tmp, 0o644)
        try:
            sftp.posix_rename(tmp, path)
        except OSError:
            try:
                sftp.remove(path)
            except OSError:
                pass
            sftp.rename(tmp, path)
        return path, True
    finally:
        sftp.close()


def _makedirs(sftp: paramiko.SFTPClient, path: str) -> None:
    parts, cur = path.strip("/").split("/"), ""
    for part in parts:
        cur += "/" + part
        try:
            sftp.stat(cur)
        except FileNotFoundError:
            sftp.mkdir(cur, 0o700)


class ChannelTransport(Transport):
    """The agent's stdin/stdout over one SSH channel; owns the connection.

    ``on_orphan(pid)`` is called when the link is gone and the agent could not
    be confirmed dead, so the backend can kill it after reconnecting.
    """

    def __init__(self, client: paramiko.SSHClient, command: str,
                 on_orphan: Callable[[int], None] | None = None, kill_timeout: float = 10.0):
        self.client, self.on_orphan, self.kill_timeout = client, on_orphan, kill_timeout
        self.pid: Optional[int] = None
        self._pid_seen = threading.Event()
        self._closed = False
        self.chan = client.get_transport().open_session(timeout=kill_timeout)
        self.chan.exec_command(command)
        out = self.chan.makefile("rb")
        self._out = LineReader(lambda: self._readline(out))
        self._err: deque = deque(maxlen=50)
        err = self.chan.makefile_stderr("rb")
        threading.Thread(target=self._drain_err, args=(err,), daemon=True).start()

    def _readline(self, f) -> bytes:
        line = f.readline()
        if not self._pid_seen.is_set() and line.startswith(PID_TAG):
            # lines before it (a chatty shell start-up file) pass through and are ignored
            try:
                self.pid = int(line[len(PID_TAG):].strip())
            except ValueError:
                pass
            self._pid_seen.set()
            line = f.readline()
        return line

    def _drain_err(self, f):
        try:
            for line in iter(f.readline, b""):
                self._err.append(line.decode("utf-8", "replace"))
        except Exception:
            pass

    def write_line(self, line: str) -> None:
        try:
            self.chan.sendall((line + "\n").encode())
        except Exception as e:  # socket closed, channel closed, transport gone
            if not self._closed:
                if self.exit_status(0.5) is None:
                    self._orphaned()
                self._finish()
            raise OSError(str(e) or type(e).__name__) from None

    def read_line(self, timeout: float) -> Optional[str]:
        line = self._out.get(timeout)
        if line is None and not self._closed:
            if self.exit_status(1.0) is None:
                self._orphaned()  # the link ended, not the agent
            self._finish()  # the session is over either way: let go of the connection
        return line

    def exit_status(self, wait: float = 2.0) -> Optional[int]:
        """The agent's exit status, or ``None`` when it did not report one (still running,
        killed by a signal, or the link ended first)."""
        self.chan.status_event.wait(wait)  # also set when the channel closes
        return None if self.chan.exit_status == -1 else self.chan.exit_status

    def stderr_tail(self) -> str:
        return "".join(self._err)

    def _orphaned(self) -> None:
        if self.pid is not None and self.on_orphan:
            self.on_orphan(self.pid)

    def _alive(self) -> bool:
        t = self.client.get_transport()
        return t is not None and t.is_active()

    def close(self, wait: float = 5.0) -> None:
        if self._closed:
            return
        try:
            self.chan.shutdown_write()  # end of input: the agent says bye and exits
        except Exception:
            pass
        if self.exit_status(wait) is None:
            self.kill()
            return
        self._finish()

    def kill(self) -> None:
        if self._closed:
            return
        self._pid_seen.wait(min(2.0, self.kill_timeout))
        killed = False
        if self.pid is not None and self._alive():
            try:
                status, _, _ = run(self.client, kill_command([self.pid]), self.kill_timeout)
                killed = status == 0
            except Exception:
                killed = False
        if not killed and self.chan.exit_status == -1:
            self._orphaned()
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        try:
            self.chan.close()
        except Exception:
            pass
        self.client.close()
