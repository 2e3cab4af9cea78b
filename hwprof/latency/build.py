"""Build orchestration: specs + backends -> a checkpointed, resumable table.

Every finished result is merged into the table on disk (atomically, at most
every ``checkpoint_every`` seconds and always at the end), so an interrupted
build loses at most the results of that last interval, and re-running the same
command measures only what the table still lacks.

Several backends share one queue of specs (one worker thread each). A backend
whose link drops is reopened with exponential backoff and resumes with the
specs not yet measured; one that never comes back ends its worker, and the
build fails with a clear error once no worker is left, keeping every row.

With ``passes`` > 1 every op is measured that many times, in whole sweeps over
the op list (see :mod:`hwprof.latency.passes`); a table measured with fewer
passes gets only the passes it lacks.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from hwprof import __version__
from hwprof.errors import DeviceError, UserError
from hwprof.latency.backends.base import Backend
from hwprof.latency.backends.session import AgentLost, AgentSession
from hwprof.latency.passes import combine, done_passes, pass_order
from hwprof.latency.specs import OpSpec
from hwprof.latency.table import (
    LatencyTable,
    check_writable,
    environment_key,
    read_table,
    row_key,
    rows_frame,
    spec_columns,
    write_table,
)

RESULT_STATS = ("median_ms", "mean_ms", "min_ms", "max_ms", "p10_ms", "p90_ms", "iqr_ms",
                "std_ms", "cv", "ci_low_ms", "ci_high_ms", "n_samples", "block_size",
                "first_call_ms", "converged", "unstable", "sampled_s", "wall_s", "governor",
                "freq_mhz", "temp_c_before", "temp_c_after", "calib_median_ms", "calib_ratio")


OP_LOSS_LIMIT = 3  # an op that loses the agent this many times becomes an error row


class BuildError(UserError):
    """The build could not finish; the rows measured so far are kept."""


@dataclass
class BuildReport:
    out: str
    requested: int
    skipped: int
    measured: int = 0
    errors: int = 0
    reconnects: int = 0
    wall_s: float = 0.0
    sampled_s: float = 0.0
    passes: int = 1
    devices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def result_row(spec: OpSpec, result: dict, hello: dict, label: str) -> dict:
    env = hello["environment"]
    row = spec_columns(spec)
    row.update({k: result.get(k) for k in RESULT_STATS})
    row.update({
        "device_fingerprint": hello["fingerprint_id"],
        "env_key": environment_key(env, hello["device"]),
        "status": result["status"], "error": result.get("error"),
        "device": label, "runtime": env.get("runtime"),
        "runtime_version": env.get("runtime_version"),
        "board_model": _hardware(hello["fingerprint"]),
        "measured_at": pd.Timestamp(result.get("started_at") or time.time(), unit="s", tz="UTC").floor("ms"),
        "hwprof_version": __version__, "source": "measured", "source_key": None,
    })
    if result["status"] != "ok":  # never a latency for a failed op
        for k in RESULT_STATS[:18]:
            row[k] = None
    return row


def _hardware(fp: dict) -> str:
    return fp.get("gpu_name") or fp.get("board_model") or fp.get("cpu_model") or "unknown"


def _runtime_clash(table: LatencyTable, hellos: list[dict]) -> str | None:
    """Why the new rows would mix runtimes on a device of ``table``, or None."""
    df = table.df
    for h in hellos:
        runtime = h["environment"].get("runtime")
        held = set(df.loc[df["device_fingerprint"] == h["fingerprint_id"], "runtime"].dropna())
        held.discard(runtime)
        if held:
            return (f"holds {', '.join(sorted(held))} rows for {_hardware(h['fingerprint'])} "
                    f"({h['fingerprint_id']}) and this build measures with {runtime}")
    return None


class _Checkpointer:
    """Merges rows into the table and writes it atomically, throttled."""

    def __init__(self, out: Path, table: LatencyTable, every: float):
        self.out, self.table, self.every = out, table, every
        self.pending: dict[tuple, dict] = {}  # key -> latest row (a later pass replaces it)
        self.lock = threading.Lock()
        self.last = 0.0

    def note_device(self, hello: dict, protocol: dict) -> None:
        with self.lock:
            meta = self.table.meta
            meta.setdefault("devices", {})[hello["fingerprint_id"]] = hello["fingerprint"]
            key = environment_key(hello["environment"], hello["device"])
            meta.setdefault("environments", {})[key] = hello["environment"]
            meta["protocol"] = protocol
            meta.setdefault("agent_version", hello.get("agent_version"))

    def add(self, row: dict) -> None:
        with self.lock:
            self.pending[row_key(row)] = row
            if time.monotonic() - self.last >= self.every:
                self._flush()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        if self.pending or not self.out.exists():
            self.table.upsert(rows_frame(self.pending.values()))
            write_table(self.out, self.table)
            self.pending = {}
        self.last = time.monotonic()


def _progress(total: int, quiet: bool, desc: str):
    from tqdm import tqdm
    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="op", disable=disable, dynamic_ncols=True,
                smoothing=0.1)


def build_table(specs: Sequence[OpSpec], backends: Sequence[Backend], out: str | Path, *,
                seed: int = 0, protocol: dict | None = None, remeasure: bool = False,
                quiet: bool = False, allow_mixed: bool = False, max_reconnects: int = 5,
                backoff: float = 1.0, checkpoint_every: float = 0.5, passes: int = 1,
                log: Callable[[str], None] | None = None) -> BuildReport:
    """Measure ``specs`` on ``backends`` into the table at ``out``, ``passes`` times each."""
    out = Path(out)
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise UserError(f"the number of passes must be a positive integer, got {passes!r}")
    log = log or (lambda msg: print(msg, file=sys.stderr))
    check_writable(out)
    table = read_table(out) if out.exists() else LatencyTable.new()
    t0 = time.monotonic()
    config = {"seed": seed, "protocol": protocol or {}}

    sessions: list[AgentSession | None] = []
    try:
        for b in backends:
            try:
                sessions.append(b.open(config))
            except AgentLost as e:  # the link dropped while starting: retry like any drop
                sess = _reopen(b, config, e, max_reconnects, backoff, log, threading.Event())
                if sess is None:
                    raise
                sessions.append(sess)
    except BaseException:
        for s in sessions:
            s.close()
        raise
    hellos = [s.hello for s in sessions]
    fps = {h["fingerprint_id"] for h in hellos}
    if len(fps) > 1 and not allow_mixed:
        for s in sessions:
            s.close()
        desc = "; ".join(f"{b.label}: {_hardware(h['fingerprint'])} ({h['fingerprint_id']})"
                         for b, h in zip(backends, hellos))
        raise BuildError(f"the devices differ ({desc}); one table should hold one kind of "
                         f"device. Pass --allow-mixed to measure them into one table anyway.")
    clash = None if allow_mixed else _runtime_clash(table, hellos)
    if clash:
        for s in sessions:
            s.close()
        raise BuildError(f"{out} {clash}; one table should hold one runtime per device, so its "
                         f"rows are never mixed silently. Write to another --out, or pass "
                         f"--allow-mixed to add them anyway.")

    keys_of = {}
    for h in hellos:
        keys_of[h["fingerprint_id"]] = environment_key(h["environment"], h["device"])
    prior = {} if remeasure else _ok_rows(table)
    need = {}  # signature -> passes still to measure
    for s in specs:
        have = min(done_passes(prior.get((s.signature, fp, env))) for fp, env in keys_of.items())
        if have < passes:
            need[s.signature] = passes - have
    todo = [s for s in specs if s.signature in need]
    report = BuildReport(out=str(out), requested=len(specs), skipped=len(specs) - len(todo),
                         devices=[b.label for b in backends], passes=passes)
    ckpt = _Checkpointer(out, table, checkpoint_every)
    for h in hellos:
        ckpt.note_device(h, sessions[0].hello.get("protocol") or protocol or {})
    if not todo:
        for s in sessions:
            s.close()
        ckpt.flush()
        report.wall_s = time.monotonic() - t0
        return report

    work: queue.Queue = queue.Queue()
    jobs = 0
    for p in range(max(need.values())):  # whole sweeps, one after the other
        for s in pass_order([s for s in todo if need[s.signature] > p], p, seed):
            work.put(s)
            jobs += 1
    sweeps = f" ({passes} passes)" if passes > 1 else ""
    bar = _progress(jobs, quiet, f"measuring on {', '.join(report.devices)}{sweeps}")
    lock = threading.Lock()
    fresh: dict[tuple, list[dict]] = {}  # key -> this build's passes of it
    failed: set[str] = set()  # signatures that failed in this build: no more passes

    def record(row: dict) -> None:
        """Merge one pass into its key's row (with the row on disk) and checkpoint it."""
        key = row_key(row)
        with lock:
            fresh.setdefault(key, []).append(row)
            merged = combine(prior.get(key), fresh[key])
            if row["status"] != "ok":
                failed.add(row["signature"])
            ckpt.add(merged)  # under the lock: a key's merges reach the table in order
    failures: list[str] = []
    lost: dict[str, int] = {}  # signature -> times the agent was lost while measuring it
    stop = threading.Event()

    crashes: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            _work(i)
        except BaseException as e:  # a bug, not a device fault: re-raised below
            crashes.append(e)
            stop.set()

    def _work(i: int) -> None:
        backend, sess = backends[i], sessions[i]
        while not stop.is_set():
            try:
                spec = work.get_nowait()
            except queue.Empty:
                break
            if spec.signature in failed:  # it failed in an earlier pass: it stays an error
                with lock:
                    bar.update(1)
                continue
            try:
                if sess is None:
                    raise AgentLost(f"{backend.label}: not connected")
                res = sess.measure(spec.signature, spec.plan())
            except AgentLost as e:
                with lock:
                    tries = lost[spec.signature] = lost.get(spec.signature, 0) + 1
                if tries >= OP_LOSS_LIMIT and sess is not None:
                    # the op itself kills or hangs the agent: an error row, not an endless retry
                    err = f"the agent was lost {tries} times while measuring this op; last: {e}"
                    record(result_row(spec, {"status": "error", "error": err}, sess.hello,
                                      backend.label))
                    with lock:
                        report.measured += 1
                        report.errors += 1
                        bar.update(1)
                        bar.write(f"error: {spec.kind} {spec.signature}: {err}")
                else:
                    work.put(spec)
                sess = _reopen(backend, config, e, max_reconnects, backoff, log, stop)
                sessions[i] = sess
                with lock:
                    report.reconnects += 1
                if sess is None:
                    failures.append(f"{backend.label}: {e}")
                    return
                continue
            record(result_row(spec, res, sess.hello, backend.label))
            with lock:
                report.measured += 1
                report.errors += res["status"] != "ok"
                report.sampled_s += res.get("sampled_s") or 0.0
                bar.update(1)
                if res["status"] != "ok":
                    bar.write(f"error: {spec.kind} {spec.signature}: {res.get('error')}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(len(backends))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except BaseException:
        stop.set()
        for s in sessions:
            if s is not None:
                s.t.kill()
        raise
    finally:
        bar.close()
        ckpt.flush()
        for s in sessions:
            if s is not None:
                s.close()
    report.wall_s = time.monotonic() - t0
    if crashes:
        raise crashes[0]
    if not work.empty():
        left = work.qsize()
        raise BuildError(f"build stopped with {left} op(s) not measured: {'; '.join(failures)}. "
                         f"{report.measured} row(s) measured in this run are saved in {out}; "
                         f"run the same command again to resume.")
    return report


def _ok_rows(table: LatencyTable) -> dict[tuple, dict]:
    """The table's ok rows by key: what new passes are merged with."""
    ok = table.df[table.df["status"] == "ok"]
    return {row_key(r): r for r in ok.to_dict("records")}


def _reopen(backend: Backend, config: dict, err: Exception, tries: int, backoff: float,
            log: Callable[[str], None], stop: threading.Event) -> AgentSession | None:
    delay = backoff
    for attempt in range(1, tries + 1):
        log(f"{backend.label}: {err}; reconnecting in {delay:.0f} s "
            f"(attempt {attempt}/{tries})")
        if stop.wait(delay):
            return None
        try:
            return backend.open(config)
        except DeviceError as e:  # AgentLost is a DeviceError too
            err = e
            delay = min(delay * 2, 30.0)
    log(f"{backend.label}: gave up after {tries} attempts: {err}")
    return None
