"""Builds over a real sshd on loopback: same rows as local, dropped links, hung agents,
two boards, a board that never comes back, Ctrl-C. No runner may outlive a test (the
``sshd_factory`` fixture checks)."""

import _thread
import os
import signal
import sys
import threading
import time

import pandas as pd
import pytest

from hwprof.latency.backends.base import BackendOptions
from hwprof.latency.backends.registry import get_backend
from hwprof.latency.backends.ssh import SshBackend
from hwprof.latency.build import BuildError, build_table
from hwprof.latency.spaces import get_space
from hwprof.latency.table import KEY, read_table
from tests.conftest import FAST_PROTOCOL

pytestmark = pytest.mark.ssh


def ssh_backend(srv, tmp_path, op_timeout=60.0):
    opts = BackendOptions(op_timeout=op_timeout, extra={
        "remote_python": sys.executable, "remote_cache_dir": str(tmp_path / "board-cache")})
    return SshBackend(f"ssh://root@127.0.0.1:{srv.port}", opts)


def build(specs, backends, out, **kw):
    kw.setdefault("backoff", 0.2)
    kw.setdefault("group_ops", 2)  # rows reach the table group by group: small groups, many events
    return build_table(specs, backends, out, protocol=FAST_PROTOCOL, quiet=True,
                       log=lambda m: None, **kw)


def rows(out):
    try:
        return len(pd.read_parquet(out))
    except Exception:
        return 0


def when_rows(out, n, action, timeout=600.0):
    """Run ``action`` on a thread once the table at ``out`` holds ``n`` rows."""
    fired = threading.Event()

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if out.exists() and rows(out) >= n:
                action()
                fired.set()
                return
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    return fired


def row_set(df):
    return set(zip(df["signature"], df["device_fingerprint"], df["status"]))


def test_ssh_build_equals_a_local_build(sshd, tmp_path):
    specs = get_space("tiny").table_specs()
    local = read_table_after(build(specs, [get_backend("cpu")], tmp_path / "local.parquet"))
    rep = build(specs, [ssh_backend(sshd, tmp_path)], tmp_path / "ssh.parquet")
    assert rep.measured == len(specs) and rep.errors == 0 and rep.reconnects == 0
    remote = read_table(tmp_path / "ssh.parquet").df
    assert row_set(remote) == row_set(local) and len(remote) == len(local) == len(specs)
    if "OMP_NUM_THREADS" not in os.environ:  # the board's shell does not inherit it
        assert set(remote["env_key"]) == set(local["env_key"])
    assert set(remote["device"]) == {f"ssh://root@127.0.0.1:{sshd.port}"}
    assert (remote["median_ms"] > 0).all()
    # per-row board state is read on the board, as it is locally
    for col in ("board_model", "freq_mhz", "governor", "temp_c_before", "temp_c_after"):
        assert remote[col].notna().all() == local[col].notna().all(), col
    assert set(remote["board_model"]) == set(local["board_model"])


def read_table_after(report):
    return read_table(report.out).df


def test_dropped_link_mid_build_reconnects_and_gives_the_exact_row_set(sshd, tmp_path):
    specs = get_space("tiny").table_specs()
    out = tmp_path / "t.parquet"
    dropped = []
    fired = when_rows(out, 3, lambda: dropped.append(sshd.drop_links()))
    rep = build(specs, [ssh_backend(sshd, tmp_path)], out, checkpoint_every=0.0)
    assert fired.is_set() and dropped[0] >= 1
    assert rep.reconnects >= 1
    df = read_table(out).df
    assert set(df["signature"]) == {s.signature for s in specs}
    assert len(df) == len(specs) and not df.duplicated(list(KEY)).any()
    assert (df["status"] == "ok").all()


def test_hung_agent_in_a_build_is_killed_and_the_build_completes(sshd, tmp_path):
    specs = get_space("tiny").table_specs()
    out = tmp_path / "t.parquet"
    stopped = []

    def freeze():
        for pid in sshd.agents():
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)

    fired = when_rows(out, 2, freeze)
    t0 = time.monotonic()
    rep = build(specs, [ssh_backend(sshd, tmp_path, op_timeout=3.0)], out, checkpoint_every=0.0)
    assert fired.is_set() and stopped and rep.reconnects >= 1
    assert time.monotonic() - t0 < 60
    assert all(pid not in sshd.agents() for pid in stopped)
    df = read_table(out).df
    assert set(df["signature"]) == {s.signature for s in specs} and len(df) == len(specs)


def test_two_boards_share_the_work_without_duplicates(sshd_factory, tmp_path):
    a, b = sshd_factory(), sshd_factory()
    specs = get_space("tiny").table_specs()
    out = tmp_path / "two.parquet"
    backends = [ssh_backend(a, tmp_path), ssh_backend(b, tmp_path)]
    rep = build(specs, backends, out)
    assert rep.measured == len(specs) and rep.devices == [x.label for x in backends]
    df = read_table(out).df
    assert set(df["signature"]) == {s.signature for s in specs}
    assert len(df) == len(specs) and not df.duplicated(list(KEY)).any()
    assert set(df["device"]) == {x.label for x in backends}  # both boards measured some
    assert df["device_fingerprint"].nunique() == 1


def test_board_that_never_comes_back_ends_the_build_keeping_rows(sshd, tmp_path):
    specs = get_space("tiny").table_specs()
    out = tmp_path / "t.parquet"
    fired = when_rows(out, 3, sshd.stop)  # listener and sessions gone for good
    with pytest.raises(BuildError) as e:
        build(specs, [ssh_backend(sshd, tmp_path)], out, checkpoint_every=0.0,
              max_reconnects=2, backoff=0.1)
    assert fired.is_set()
    msg = str(e.value)
    assert "not measured" in msg and "run the same command again to resume" in msg
    assert f"ssh://root@127.0.0.1:{sshd.port}" in msg
    df = read_table(out).df
    assert 3 <= len(df) < len(specs) and (df["status"] == "ok").all()
    assert sshd.wait_no_agents(10.0) == []  # the orphan saw its input close and exited


def test_interrupted_build_leaves_no_runner_on_the_board(sshd, tmp_path):
    specs = get_space("tiny").table_specs()
    out = tmp_path / "t.parquet"
    # Ctrl-C as Python sees it by default, whatever an earlier test in this process left as the
    # SIGINT handler (interrupt_main does nothing under an ignored one)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupted_build(specs, out, sshd, tmp_path)
    finally:
        signal.signal(signal.SIGINT, before)
    assert sshd.wait_no_agents(3.0) == []
    assert 2 <= rows(out) < len(specs)


def _interrupted_build(specs, out, sshd, tmp_path):
    fired = when_rows(out, 2, _thread.interrupt_main)
    with pytest.raises(KeyboardInterrupt):
        build(specs, [ssh_backend(sshd, tmp_path)], out, checkpoint_every=0.0)
        # only reached if the build ended first: the watcher fires within 50 ms of the rows
        if fired.wait(600):  # pragma: no cover
            time.sleep(5)
    assert fired.is_set()


def test_agent_orphaned_by_a_dropped_link_is_killed_after_reconnecting(sshd, tmp_path):
    # a stopped agent never sees its input close: only the backend's clean-up can end it
    specs = get_space("tiny").table_specs()
    out = tmp_path / "t.parquet"
    frozen = []

    def freeze_then_drop():
        frozen.extend(sshd.agents())
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        sshd.drop_links()

    fired = when_rows(out, 2, freeze_then_drop)
    rep = build(specs, [ssh_backend(sshd, tmp_path, op_timeout=30.0)], out, checkpoint_every=0.0)
    assert fired.is_set() and frozen and rep.reconnects >= 1
    assert not any(pid in sshd.agents() for pid in frozen)
    df = read_table(out).df
    assert set(df["signature"]) == {s.signature for s in specs} and len(df) == len(specs)


def test_an_op_that_always_hangs_the_board_becomes_an_error_row(sshd, tmp_path):
    from hwprof.latency.buildrun import OP_LOSS_LIMIT
    from hwprof.latency.specs import parse_spec
    small = get_space("tiny").table_specs()[:2]
    # one call takes seconds: with a 1.5 s op timeout the agent looks hung every time
    huge = parse_spec({"kind": "conv2d", "input": [1, 128, 96, 96], "out_channels": 256,
                       "kernel": 5})
    out = tmp_path / "t.parquet"
    rep = build([small[0], huge, small[1]], [ssh_backend(sshd, tmp_path, op_timeout=1.5)], out,
                backoff=0.1)
    assert rep.reconnects == OP_LOSS_LIMIT and rep.errors == 1
    df = read_table(out).df.set_index("signature")
    assert df.loc[huge.signature, "status"] == "error"
    assert pd.isna(df.loc[huge.signature, "median_ms"])  # never a latency for it
    assert f"lost {OP_LOSS_LIMIT} times" in df.loc[huge.signature, "error"]
    assert (df.loc[[s.signature for s in small], "status"] == "ok").all()


def test_link_dropped_while_the_agent_starts_is_retried(sshd, tmp_path):
    specs = get_space("tiny").table_specs()
    out = tmp_path / "t.parquet"
    dropped = []

    def drop_at_start():
        deadline = time.monotonic() + 30
        while not sshd.agents() and time.monotonic() < deadline:
            time.sleep(0.01)
        dropped.append(sshd.drop_links())  # the agent is still importing nnabla: no hello yet

    threading.Thread(target=drop_at_start, daemon=True).start()
    rep = build(specs, [ssh_backend(sshd, tmp_path)], out)
    assert dropped and dropped[0] >= 1
    assert rep.reconnects == 0 and rep.measured == len(specs)  # the retry happened before the workers
    df = read_table(out).df
    assert set(df["signature"]) == {s.signature for s in specs} and len(df) == len(specs)
