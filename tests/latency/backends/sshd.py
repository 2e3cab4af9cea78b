"""A real OpenSSH server on loopback for the SSH backend's tests and benchmark.

``Sshd.start(workdir, client_pubkey)`` runs ``/usr/sbin/sshd -D`` on 127.0.0.1
on a free port with its own host key, authorized key and config in
``workdir``; ``stop()`` ends it by its PID. The "board" it serves is this
machine, so the remote agent runs with whatever Python the test names.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
AGENT_TAG = b"hwprof-agent-"


def have_sshd() -> bool:
    return os.access(SSHD, os.X_OK) and os.access("/usr/bin/ssh-keygen", os.X_OK)


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (no passphrase); returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hwprof-test",
                    "-f", str(path)], check=True, capture_output=True)
    return Path(str(path) + ".pub").read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ppid_and_state(pid: int) -> tuple[int, str, str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], comm


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


@dataclass
class Sshd:
    port: int
    dir: Path
    proc: subprocess.Popen
    host_pub: str

    @classmethod
    def start(cls, workdir: Path, client_pubkey: str) -> "Sshd":
        workdir.mkdir(parents=True, exist_ok=True)
        host_key = workdir / "host_ed25519"
        host_pub = keygen(host_key)
        (workdir / "authorized_keys").write_text(client_pubkey + "\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        for _attempt in range(5):
            port = free_port()
            cfg = workdir / "sshd_config"
            cfg.write_text("\n".join([
                f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}", f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                "PermitRootLogin yes", "PubkeyAuthentication yes", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
                "Subsystem sftp internal-sftp", "LogLevel ERROR", "MaxStartups 50",
                "MaxSessions 20", "PrintMotd no", "UseDNS no", ""]))
            log = open(workdir / "sshd.log", "ab")
            proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=log,
                                    stdin=subprocess.DEVNULL)
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                        if s.recv(4).startswith(b"SSH-"):
                            return cls(port, workdir, proc, host_pub)
                except OSError:
                    time.sleep(0.05)
            proc.kill()
            proc.wait()
        raise RuntimeError("sshd did not start: " + (workdir / "sshd.log").read_text()[-500:])

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {' '.join(self.host_pub.split()[:2])}"

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (children and grandchildren of the listener)."""
        out = []
        for pid in _pids():
            try:
                cur = pid
                for _ in range(3):
                    ppid, _state, comm = _ppid_and_state(cur)
                    if ppid == self.proc.pid:
                        if _ppid_and_state(pid)[2] == "sshd":
                            out.append(pid)
                        break
                    cur = ppid
                    if cur <= 1:
                        break
            except (OSError, ValueError, IndexError):
                continue
        return out

    def drop_links(self) -> int:
        """Kill every per-session sshd (what a dropped link looks like); returns how many."""
        pids = self.session_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(pids)

    def agents(self) -> list[int]:
        """Live (non-zombie) agent processes started through this server."""
        found = []
        for pid in _pids():
            try:
                if AGENT_TAG not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                conn = [e for e in env if e.startswith(b"SSH_CONNECTION=")]
                if not conn or not conn[0].endswith(b" %d" % self.port):
                    continue
                if _ppid_and_state(pid)[1] != "Z":
                    found.append(pid)
            except (OSError, ValueError, IndexError):
                continue
        return found

    def wait_no_agents(self, timeout: float = 10.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while True:
            left = self.agents()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def stop(self) -> None:
        self.drop_links()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
