"""SSH device strings and ~/.ssh/config resolution (no server needed)."""

import shlex

import pytest

from hwprof.errors import DeviceError
from hwprof.latency.backends.ssh_config import parse_device, resolve
from hwprof.latency.backends.ssh_transport import agent_command, kill_command


@pytest.fixture
def home(tmp_path, monkeypatch):
    (tmp_path / ".ssh").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("device, expected", [
    ("ssh://board", (None, "board", None)),
    ("ssh://pi@board", ("pi", "board", None)),
    ("ssh://pi@board.local:2222", ("pi", "board.local", 2222)),
    ("ssh://10.0.0.7:22", (None, "10.0.0.7", 22)),
    ("ssh://root@[fe80::1%eth0]:2200", ("root", "fe80::1%eth0", 2200)),
    ("ssh://[::1]", (None, "::1", None)),
])
def test_parse_device(device, expected):
    assert parse_device(device) == expected


@pytest.mark.parametrize("device", [
    "ssh://pi;touch${IFS}x@board", "ssh://$(id)@board", "ssh://pi@board;reboot",
    "ssh://pi@`reboot`", "ssh://pi@board:22;ls", "ssh://pi@-oProxyCommand=x", "ssh://pi@board:0",
    "ssh://pi@board:99999", "ssh://", "ssh://pi@", "ssh://pi@bo ard",
])
def test_shell_metacharacters_and_bad_parts_are_refused(device):
    with pytest.raises(DeviceError, match="bad (host|port|user)"):
        parse_device(device)


def test_a_password_in_the_device_is_refused_without_echoing_it():
    with pytest.raises(DeviceError) as e:
        parse_device("ssh://pi:s3cr3t@board")
    assert "s3cr3t" not in str(e.value)
    assert "ssh-agent" in str(e.value)


def test_config_alias_user_port_identityfile(home):
    key = home / "boardkey"
    key.write_text("not read here")
    (home / ".ssh" / "config").write_text(
        "Host pi4\n  HostName 192.168.1.40\n  User pi\n  Port 2022\n  IdentityFile ~/boardkey\n"
        "  UserKnownHostsFile ~/.ssh/boards_known\n  StrictHostKeyChecking accept-new\n"
        "Host *\n  User fallback\n")
    t = resolve("ssh://pi4")
    assert (t.hostname, t.port, t.user) == ("192.168.1.40", 2022, "pi")
    assert t.key_files == [str(key)]
    assert t.known_hosts == [str(home / ".ssh" / "boards_known")]
    assert t.accept_new
    assert t.label == "ssh://pi@pi4:2022"
    assert t.host_key_name == "[192.168.1.40]:2022"
    # explicit parts of the device string win over the config
    t = resolve("ssh://admin@pi4:22")
    assert (t.user, t.port, t.host_key_name) == ("admin", 22, "192.168.1.40")
    other = resolve("ssh://elsewhere")
    assert (other.hostname, other.user, other.port) == ("elsewhere", "fallback", 22)
    assert other.known_hosts == [str(home / ".ssh" / "known_hosts")]
    assert not other.accept_new


def test_missing_ssh_key_file_is_a_clear_error(home):
    with pytest.raises(DeviceError, match="--ssh-key .*no such file"):
        resolve("ssh://pi@board", ssh_key=str(home / "nope"))


def test_remote_commands_quote_every_word():
    evil_py = "/opt/py thon/bin/python3 -u"
    evil_path = "/home/pi/.cache/x'; touch /tmp/pwned; echo '$(reboot)`id`.pyz"
    cmd = agent_command(evil_py, evil_path, "--check")
    # the outer command is `exec /bin/sh -c <one word>`; that word is the inner script
    outer = shlex.split(cmd)
    assert outer[:3] == ["exec", "/bin/sh", "-c"] and len(outer) == 4
    inner = shlex.split(outer[3].split("; ", 1)[1])
    assert inner == ["exec", "/opt/py", "thon/bin/python3", "-u", evil_path, "--check"]
    assert kill_command([12, 34]).count("kill -KILL") == 2
    with pytest.raises(ValueError):
        kill_command(["12; reboot"])


def test_proxy_command_and_proxy_jump(home):
    (home / ".ssh" / "config").write_text(
        "Host viaproxy\n  HostName 10.1.2.3\n  Port 2200\n  ProxyCommand nc -x gw:1080 %h %p\n"
        "Host viajump\n  HostName 10.1.2.4\n  ProxyJump admin@gw1:2222,gw2\n"
        "Host badjump\n  ProxyJump -oProxyCommand=evil\n")
    assert resolve("ssh://viaproxy").proxy_command == "nc -x gw:1080 10.1.2.3 2200"
    cmd = resolve("ssh://viajump").proxy_command
    assert shlex.split(cmd) == ["ssh", "-J", "admin@gw1:2222", "-W", "10.1.2.4:22", "gw2"]
    (home / ".ssh" / "config").write_text("Host j2\n  HostName b\n  ProxyJump pi@gw:2222\n"
                                          "Host badjump\n  ProxyJump -oProxyCommand=evil\n")
    assert shlex.split(resolve("ssh://j2").proxy_command) == ["ssh", "-W", "b:22", "ssh://pi@gw:2222"]
    assert resolve("ssh://plain").proxy_command is None
    with pytest.raises(DeviceError, match="ProxyJump"):
        resolve("ssh://badjump")
