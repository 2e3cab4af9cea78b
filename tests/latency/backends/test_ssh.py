"""The SSH backend against a real sshd on loopback: connect, host keys, deploy, check, hang.

The "board" is this machine; its Python is the test interpreter unless a test
names another. Every test ends with the fixture checking that no agent
process started through the server is still running.
"""

import os
import platform
import signal
import subprocess
import sys
import time

import pytest

from hwprof.errors import DeviceError
from hwprof.latency.backends.base import BackendOptions
from hwprof.latency.backends.bundle import agent_filename
from hwprof.latency.backends.session import AgentHung
from hwprof.latency.backends.ssh import SshBackend
from hwprof.latency.backends.ssh_transport import HostKeyError
from hwprof.latency.spaces import get_space
from tests.conftest import FAST_PROTOCOL

pytestmark = pytest.mark.ssh


def backend(srv, tmp_path, user="root", **extra):
    extra.setdefault("remote_python", sys.executable)
    extra.setdefault("remote_cache_dir", str(tmp_path / "board-cache"))
    opts = BackendOptions(op_timeout=extra.pop("op_timeout", 60.0), extra=extra)
    return SshBackend(f"ssh://{user}@127.0.0.1:{srv.port}", opts)


def test_check_reports_the_board_and_reuses_the_deployed_agent(sshd, tmp_path):
    b = backend(sshd, tmp_path)
    rep = b.check()
    assert rep["ok"], rep["problems"]
    assert rep["device"] == f"ssh://root@127.0.0.1:{sshd.port}"
    assert rep["runtime"]["name"] == "nnabla" and rep["runtime"]["version"]
    assert rep["python"] == platform.python_version()
    assert rep["fingerprint"]["cpu_model"] and len(rep["fingerprint_id"]) == 12
    deployed = tmp_path / "board-cache" / agent_filename()
    assert deployed.is_file() and b.deploys == 1
    mtime = deployed.stat().st_mtime_ns
    b2 = backend(sshd, tmp_path)
    assert b2.check()["ok"] and b2.deploys == 0  # same version: not copied again
    assert deployed.stat().st_mtime_ns == mtime
    deployed.write_bytes(b"truncated")  # a damaged copy is replaced
    b3 = backend(sshd, tmp_path)
    assert b3.check()["ok"] and b3.deploys == 1
    assert sorted(p.name for p in deployed.parent.iterdir()) == [agent_filename()]


def test_ssh_config_alias_and_identity_file(sshd, ssh_home, tmp_path):
    # the key lives outside the default places: only IdentityFile can find it
    other = ssh_home.home / "keys" / "board"
    other.parent.mkdir()
    ssh_home.key.rename(other)
    ssh_home.key.with_suffix(".pub").rename(str(other) + ".pub")
    (ssh_home.home / ".ssh" / "config").write_text(
        f"Host myboard\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n"
        f"  IdentityFile ~/keys/board\n")
    opts = BackendOptions(extra={"remote_python": sys.executable,
                                 "remote_cache_dir": str(tmp_path / "c")})
    b = SshBackend("ssh://myboard", opts)
    assert b.label == f"ssh://root@myboard:{sshd.port}"
    assert b.check()["ok"]
    (ssh_home.home / ".ssh" / "config").write_text(
        f"Host myboard\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n")
    rep = SshBackend("ssh://myboard", opts).check()
    assert not rep["ok"] and "authentication failed for user 'root'" in rep["problems"][0]


def test_unknown_host_key_is_refused_then_accepted_on_request(sshd_factory, ssh_home, tmp_path):
    srv = sshd_factory(trust=False)
    rep = backend(srv, tmp_path).check()
    assert not rep["ok"] and rep["fingerprint"] is None
    msg = rep["problems"][0]
    assert "is not known" in msg and "--accept-new-host-key" in msg and "ssh-keyscan -p" in msg
    with pytest.raises(HostKeyError, match="not known"):
        backend(srv, tmp_path).open({"protocol": FAST_PROTOCOL})
    assert ssh_home.known_hosts.read_text() == ""
    assert backend(srv, tmp_path, accept_new_host_key=True).check()["ok"]
    assert ssh_home.known_hosts.read_text().strip() == srv.known_hosts_line()
    assert backend(srv, tmp_path).check()["ok"]  # now known
    # Debian's default HashKnownHosts: hashed entries are honoured too
    subprocess.run(["ssh-keygen", "-H", "-f", str(ssh_home.known_hosts)], check=True,
                   capture_output=True)
    assert ssh_home.known_hosts.read_text().startswith("|1|")
    assert backend(srv, tmp_path).check()["ok"]


def test_changed_host_key_is_refused_even_with_accept_new(sshd_factory, ssh_home, tmp_path):
    srv = sshd_factory(trust=False)
    other = sshd_factory(trust=False)  # another server's key filed under srv's name
    ssh_home.known_hosts.write_text(
        f"[127.0.0.1]:{srv.port} {' '.join(other.host_pub.split()[:2])}\n")
    for accept in (False, True):
        rep = backend(srv, tmp_path, accept_new_host_key=accept).check()
        assert not rep["ok"]
        assert "HAS CHANGED" in rep["problems"][0] and "ssh-keygen -R" in rep["problems"][0]
    with pytest.raises(HostKeyError, match="HAS CHANGED"):
        backend(srv, tmp_path).open({"protocol": FAST_PROTOCOL})
    assert ssh_home.known_hosts.read_text().count("\n") == 1  # never rewritten


def test_wrong_user_and_closed_port_are_clear_errors(sshd, tmp_path):
    rep = backend(sshd, tmp_path, user="nosuchuser").check()
    assert not rep["ok"] and "authentication failed for user 'nosuchuser'" in rep["problems"][0]
    closed = type(sshd)(port=1, dir=tmp_path, proc=sshd.proc, host_pub=sshd.host_pub)
    with pytest.raises(DeviceError, match="connection refused"):
        backend(closed, tmp_path).open({"protocol": FAST_PROTOCOL})


def test_board_without_nnabla_gets_one_clear_error_and_no_table(sshd, tmp_path):
    py = f"{sys.executable} -S"  # the same interpreter without site-packages: no nnabla
    rep = backend(sshd, tmp_path, remote_python=py).check()
    assert not rep["ok"] and not rep["runtime_usable"] and rep["runtime"] is None
    assert rep["python"] == platform.python_version()
    assert any("install nnabla on the board: pip install nnabla" in p for p in rep["problems"])
    from hwprof.latency.build import build_table
    out = tmp_path / "t.parquet"
    specs = get_space("tiny").table_specs()[:2]
    with pytest.raises(DeviceError, match="install nnabla on the board: pip install nnabla"):
        build_table(specs, [backend(sshd, tmp_path, remote_python=py)], out,
                    protocol=FAST_PROTOCOL, quiet=True)
    assert not out.exists()


def test_missing_remote_python_and_metacharacters_cannot_inject(sshd, tmp_path):
    marker = tmp_path / "pwned"
    evil_py = f"/nonexistent/python3; touch {marker}; $(touch {marker})"
    rep = backend(sshd, tmp_path, remote_python=evil_py).check()
    assert not rep["ok"] and "no Python at" in rep["problems"][0]
    with pytest.raises(DeviceError, match="no Python at"):
        backend(sshd, tmp_path, remote_python=evil_py).open({"protocol": FAST_PROTOCOL})
    evil_dir = tmp_path / f"c'; touch {marker}; echo '$(touch {marker})`touch {marker}`"
    b = backend(sshd, tmp_path, remote_cache_dir=str(evil_dir))
    assert b.check()["ok"]
    assert (evil_dir / agent_filename()).is_file()
    assert not marker.exists()


def test_cli_check_device_over_ssh(sshd, tmp_path, hwprof_cli):
    dev = f"ssh://root@127.0.0.1:{sshd.port}"
    env = dict(os.environ)
    ok = subprocess.run([*hwprof_cli, "check-device", dev, "--remote-python", sys.executable],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert f"device       {dev}: usable" in ok.stdout and "nnabla 1." in ok.stdout
    bad = subprocess.run([*hwprof_cli, "check-device", dev, "--remote-python",
                          f"{sys.executable} -S"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert bad.returncode == 2
    assert "NOT usable" in bad.stdout and "install nnabla on the board" in bad.stdout
    assert "Traceback" not in bad.stderr
    fail = subprocess.run([*hwprof_cli, "build-table", "--device", dev, "--space", "tiny",
                           "--out", str(tmp_path / "x.parquet"), "--remote-python",
                           f"{sys.executable} -S", "--quiet"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert fail.returncode == 2 and "Traceback" not in fail.stderr
    assert fail.stderr.startswith("hwprof: error: ") and "pip install nnabla" in fail.stderr
    assert not (tmp_path / "x.parquet").exists()


def test_sigstopped_agent_is_detected_as_hung_and_killed(sshd, tmp_path):
    b = backend(sshd, tmp_path, op_timeout=3.0)
    specs = get_space("tiny").table_specs()
    sess = b.open({"seed": 0, "protocol": FAST_PROTOCOL})
    try:
        first = sess.measure_group("g0", [(specs[0].signature, specs[0].plan())])
        assert first["results"][0]["status"] == "ok"
        pid = sess.t.pid
        assert sshd.agents() == [pid]
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(AgentHung, match="no answer from the agent within 3 s"):
            sess.measure_group("g1", [(specs[1].signature, specs[1].plan())])
        waited = time.monotonic() - t0
        assert 2.9 <= waited < 8.0
        assert sshd.wait_no_agents(5.0) == []  # the stopped agent was killed on the board
    finally:
        sess.close()


RELAY = """import os, socket, sys, threading
open(sys.argv[3], "a").write("relayed\\n")
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    for d in iter(lambda: os.read(0, 65536), b""):
        s.sendall(d)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
for d in iter(lambda: s.recv(65536), b""):
    os.write(1, d)
"""


def test_proxy_command_from_ssh_config_is_used(sshd, ssh_home, tmp_path):
    relay, marker = tmp_path / "relay.py", tmp_path / "relay.log"
    relay.write_text(RELAY)
    (ssh_home.home / ".ssh" / "config").write_text(
        f"Host behindgw\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n"
        f"  ProxyCommand {sys.executable} {relay} %h %p {marker}\n")
    opts = BackendOptions(extra={"remote_python": sys.executable,
                                 "remote_cache_dir": str(tmp_path / "c")})
    assert SshBackend("ssh://behindgw", opts).check()["ok"]
    assert marker.read_text() == "relayed\n"
