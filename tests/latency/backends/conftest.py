"""Fixtures for the SSH backend: a temporary client HOME and real sshd servers on loopback."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from .sshd import Sshd, have_sshd, keygen


@dataclass
class SshClientHome:
    home: Path
    key: Path          # the client's private key (also found as ~/.ssh/id_ed25519)
    pubkey: str

    @property
    def known_hosts(self) -> Path:
        return self.home / ".ssh" / "known_hosts"

    def trust(self, server: Sshd) -> None:
        with open(self.known_hosts, "a") as f:
            f.write(server.known_hosts_line() + "\n")


@pytest.fixture
def ssh_home(tmp_path, monkeypatch) -> SshClientHome:
    """A throwaway HOME with ~/.ssh/id_ed25519 and an empty known_hosts (the real ~/.ssh is
    never touched) and no ssh-agent."""
    if not have_sshd():
        pytest.skip("OpenSSH server not installed (/usr/sbin/sshd); apt-get install openssh-server")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    key = home / ".ssh" / "id_ed25519"
    pub = keygen(key)
    (home / ".ssh" / "known_hosts").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return SshClientHome(home, key, pub)


@pytest.fixture
def sshd_factory(ssh_home, tmp_path):
    """Start sshd servers that accept ``ssh_home``'s key and are in its known_hosts.

    At the end every server is stopped by its PID, after checking that no agent
    started through it is still running."""
    servers: list[Sshd] = []

    def start(trust: bool = True) -> Sshd:
        srv = Sshd.start(tmp_path / f"sshd{len(servers)}", ssh_home.pubkey)
        servers.append(srv)
        if trust:
            ssh_home.trust(srv)
        return srv

    yield start
    leftovers = {srv.port: srv.wait_no_agents(10.0) for srv in servers}
    for srv in servers:
        for pid in leftovers[srv.port]:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        srv.stop()
    assert not any(leftovers.values()), f"agent processes left on the board: {leftovers}"


@pytest.fixture
def sshd(sshd_factory) -> Sshd:
    return sshd_factory()
