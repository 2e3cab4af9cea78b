"""Where an ``ssh://`` device points: parse the device string, apply ``~/.ssh/config``.

    ssh://host             user and port from ~/.ssh/config, else the local user and 22
    ssh://pi@board:2222    explicit user and port win over the config
    ssh://board-alias      a ``Host`` alias of ~/.ssh/config (HostName, User, Port,
                           IdentityFile, UserKnownHostsFile are honoured)

Only names that cannot smuggle anything are accepted: host names, IPv4 and
bracketed IPv6 addresses, and ordinary user names. Passwords in the device
string are refused (use keys or an ssh-agent), and nothing secret ever goes
into :attr:`SshTarget.label`.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
from dataclasses import dataclass, field

from hwprof.errors import DeviceError

_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?)\]")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


@dataclass
class SshTarget:
    """A resolved board address: what to connect to and how."""

    alias: str                 # the host as the user wrote it (may be a config alias)
    hostname: str              # what to connect to
    port: int
    user: str
    key_files: list[str] = field(default_factory=list)
    known_hosts: list[str] = field(default_factory=list)
    accept_new: bool = False   # ``StrictHostKeyChecking accept-new`` in the config
    proxy_command: str | None = None  # ``ProxyCommand`` (or ``ProxyJump`` as ``ssh -W``)

    @property
    def label(self) -> str:
        host = f"[{self.alias}]" if ":" in self.alias else self.alias
        return f"ssh://{self.user}@{host}:{self.port}"

    @property
    def host_key_name(self) -> str:
        """The name the host key is filed under in known_hosts (OpenSSH's rule)."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


def parse_device(device: str) -> tuple[str | None, str, int | None]:
    """``ssh://[user@]host[:port]`` -> (user or None, host, port or None)."""
    if not device.startswith("ssh://"):
        raise DeviceError("an SSH device is written ssh://[user@]host[:port]")
    rest = device[len("ssh://"):].rstrip("/")
    user = None
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        if ":" in user:
            raise DeviceError("passwords in the device string are not supported (and would end "
                              "up in logs): use a key (--ssh-key or IdentityFile) or an ssh-agent")
        if not _USER.fullmatch(user):
            raise DeviceError(f"bad user name in the SSH device: {user!r}; expected letters, digits, "
                              f"'.', '_' or '-'")
    port = None
    m = _IPV6.match(rest)
    if m:
        host, tail = m.group(1), rest[m.end():]
    else:
        host, _, p = rest.partition(":")
        tail = ":" + p if _ else ""
    if tail:
        if not re.fullmatch(r":\d{1,5}", tail) or not 0 < int(tail[1:]) < 65536:
            raise DeviceError(f"bad port in SSH device {_safe(device)!r}; expected "
                              f"ssh://[user@]host[:port] with a port from 1 to 65535")
        port = int(tail[1:])
    if not host or not (m or _HOST.fullmatch(host)):
        raise DeviceError(f"bad host in SSH device {_safe(device)!r}; expected a host name, an "
                          f"IPv4 address or a [bracketed] IPv6 address")
    return user, host, port


def _safe(device: str) -> str:
    """The device string with anything before '@' that looks like user:secret hidden."""
    head, at, tail = device.rpartition("@")
    if at and ":" in head[len("ssh://"):]:
        return "ssh://***@" + tail
    return device


def ssh_config_path() -> str:
    return os.path.expanduser("~/.ssh/config")


def resolve(device: str, ssh_key: str | None = None) -> SshTarget:
    """Parse ``device`` and fill in the gaps from ``~/.ssh/config``."""
    user, host, port = parse_device(device)
    cfg = {}
    path = ssh_config_path()
    if os.path.isfile(path):
        import paramiko
        try:
            conf = paramiko.SSHConfig.from_path(path)
            cfg = conf.lookup(host)
        except Exception as e:  # a config paramiko cannot parse
            raise DeviceError(f"cannot read {path}: {e}") from None
    hostname = cfg.get("hostname") or host
    if not (_HOST.fullmatch(hostname) or re.fullmatch(r"[0-9A-Fa-f:.]+(%[\w.-]+)?", hostname)):
        raise DeviceError(f"{path} gives host {host!r} a HostName that is not a plain host name")
    if port is None:
        try:
            port = int(cfg.get("port") or 22)
        except ValueError:
            raise DeviceError(f"{path} gives host {host!r} a bad Port: {cfg.get('port')!r}") from None
    user = user or cfg.get("user") or getpass.getuser()
    if ssh_key:
        keys = [os.path.expanduser(ssh_key)]
        if not os.path.isfile(keys[0]):
            raise DeviceError(f"--ssh-key {ssh_key}: no such file")
    else:
        keys = [os.path.expanduser(k) for k in cfg.get("identityfile") or []]
        keys = [k for k in keys if os.path.isfile(k)]
    known = [os.path.expanduser(k) for k in (cfg.get("userknownhostsfile") or "").split()]
    known = [k for k in known if k and k != "/dev/null"] or [os.path.expanduser("~/.ssh/known_hosts")]
    accept_new = str(cfg.get("stricthostkeychecking", "")).lower() == "accept-new"
    proxy = cfg.get("proxycommand")
    if not proxy or proxy.lower() == "none":
        proxy = _jump_command(cfg.get("proxyjump"), hostname, port)
    return SshTarget(alias=host, hostname=hostname, port=port, user=user, key_files=keys,
                     known_hosts=known, accept_new=accept_new, proxy_command=proxy)


def _jump_command(jump: str | None, hostname: str, port: int) -> str | None:
    """``ProxyJump a,b`` as the command OpenSSH itself would run: ``ssh -J a -W host:port b``."""
    if not jump or jump.lower() == "none":
        return None
    hops = [h.strip() for h in jump.split(",") if h.strip()]
    for hop in hops:
        if hop.startswith("-") or not re.fullmatch(r"[\w.@:\[\]%/-]+", hop):
            raise DeviceError(f"ProxyJump {jump!r} in {ssh_config_path()} is not a list of hosts")
    last = hops[-1]
    last = last if ":" not in last.split("@")[-1] else "ssh://" + last
    words = ["ssh"] + (["-J", ",".join(hops[:-1])] if len(hops) > 1 else [])
    target = f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"
    words += ["-W", target, last]
    return " ".join(shlex.quote(w) for w in words)
