"""Build orchestration: specs + backends -> a checkpointed, resumable table.

The pieces: :mod:`buildplan` decides what is left to measure and cuts it into
groups; :mod:`buildrun` runs the groups on the backends (reconnecting, blaming
lost links); :mod:`recorder` turns answers into rows at the table's reference
level and checkpoints them. This module opens the sessions, checks that the
devices belong in one table, and wires the three together.

Re-running the same command measures only what the table still lacks. With
``passes`` > 1 every op is measured that many times, in whole sweeps over the
op list (see :mod:`hwprof.latency.passes`); with ``extra_passes`` the ops whose
passes still disagree get up to that many more, one sweep of them at a time.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from hwprof.errors import UserError
from hwprof.latency.backends.base import Backend
from hwprof.latency.backends.session import AgentLost, AgentSession
from hwprof.latency.buildplan import (
    GROUP_BYTES,
    GROUP_OPS,
    passes_needed,
    plan_extra,
    plan_groups,
    unsettled,
)
from hwprof.latency.buildrun import GroupRunner, reopen
from hwprof.latency.filelock import table_lock
from hwprof.latency.passes import PASS_SE
from hwprof.latency.recorder import Recorder, device_key, hardware, ok_rows, result_row
from hwprof.latency.reference import protocol_for
from hwprof.latency.specs import OpSpec
from hwprof.latency.table import (
    LatencyTable,
    check_writable,
    environment_key,
    read_table,
)


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
    groups: int = 0
    reference_level_ms: float | None = None
    reference_elasticity: float | None = None  # the table's, after the build (None: protocol's)
    machine: dict | None = None  # how far the reference moved during this build
    not_started: int = 0  # ops left unmeasured because the time budget was spent
    elasticity: dict | None = None  # fitted on this build's passes (elasticity.fit), if it was
    extra_ops: int = 0  # op measurements of extra passes (ops whose passes disagreed)
    devices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _runtime_clash(table: LatencyTable, hellos: list[dict]) -> str | None:
    """Why the new rows would mix runtimes on a device of ``table``, or None."""
    df = table.df
    for h in hellos:
        runtime = h["environment"].get("runtime")
        held = set(df.loc[df["device_fingerprint"] == h["fingerprint_id"], "runtime"].dropna())
        held.discard(runtime)
        if held:
            return (f"holds {', '.join(sorted(held))} rows for {hardware(h['fingerprint'])} "
                    f"({h['fingerprint_id']}) and this build measures with {runtime}")
    return None


def _progress(total: int, quiet: bool, desc: str):
    from tqdm import tqdm
    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="op", disable=disable, dynamic_ncols=True,
                smoothing=0.1)


def open_sessions(backends: Sequence[Backend], config: dict, max_reconnects: int,
                  backoff: float, log: Callable[[str], None]) -> list[AgentSession]:
    """One session per backend (a link that drops while starting is retried); all or none."""
    sessions: list[AgentSession] = []
    try:
        for b in backends:
            try:
                sessions.append(b.open(config))
            except AgentLost as e:
                sess = reopen(b, config, e, max_reconnects, backoff, log, threading.Event())
                if sess is None:
                    raise
                sessions.append(sess)
    except BaseException:
        close_all(sessions)
        raise
    return sessions


def close_all(sessions: Sequence[AgentSession | None]) -> None:
    for s in sessions:
        if s is not None:
            s.close()


def _check_devices(backends, hellos, table, out, allow_mixed) -> None:
    fps = {h["fingerprint_id"] for h in hellos}
    if len(fps) > 1 and not allow_mixed:
        desc = "; ".join(f"{b.label}: {hardware(h['fingerprint'])} ({h['fingerprint_id']})"
                         for b, h in zip(backends, hellos))
        raise BuildError(f"the devices differ ({desc}); one table should hold one kind of "
                         f"device. Pass --allow-mixed to measure them into one table anyway.")
    clash = None if allow_mixed else _runtime_clash(table, hellos)
    if clash:
        raise BuildError(f"{out} {clash}; one table should hold one runtime per device, so its "
                         f"rows are never mixed silently. Write to another --out, or pass "
                         f"--allow-mixed to add them anyway.")


@dataclass
class BuildOptions:
    """How a build runs (see :func:`build_table` for their meaning)."""

    seed: int = 0
    protocol: dict | None = None
    remeasure: bool = False
    quiet: bool = False
    allow_mixed: bool = False
    max_reconnects: int = 5
    backoff: float = 1.0
    checkpoint_every: float = 0.5
    passes: int = 1
    extra_passes: int = 0  # at most this many more passes for ops whose passes disagree
    max_pass_se: float = PASS_SE  # ... by more than this standard error (passes.pass_se)
    extra_context: bool = True  # an extra pass builds every measured op, as a sweep does
    reference_level_ms: float | None = None
    reference_elasticity: float | None = None  # ... and the elasticity that table carries with
    group_ops: int = GROUP_OPS
    group_bytes: int = GROUP_BYTES
    log: Callable[[str], None] | None = None
    deadline: float | None = None  # time.monotonic() after which no new group is started

    def check(self) -> None:
        p = self.passes
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise UserError(f"the number of passes must be a positive integer, got {p!r}")
        e = self.extra_passes
        if isinstance(e, bool) or not isinstance(e, int) or e < 0:
            raise UserError(f"extra passes must be a non-negative integer, got {e!r}")
        if not self.max_pass_se > 0:
            raise UserError(f"the passes' standard error must be positive, got {self.max_pass_se!r}")
        if self.group_ops < 1:
            raise UserError(f"a group holds at least one op, got --group-ops {self.group_ops}")
        self.log = self.log or (lambda msg: print(msg, file=sys.stderr))


def build_table(specs: Sequence[OpSpec], backends: Sequence[Backend], out: str | Path,
                **options) -> BuildReport:
    """Measure ``specs`` on ``backends`` into the table at ``out``, ``passes`` times each.

    Options (:class:`BuildOptions`): ``seed``, ``protocol`` (agent settings),
    ``remeasure`` (ops already in the table too), ``quiet``, ``allow_mixed``
    (devices or runtimes mixed in one table), ``max_reconnects`` and ``backoff``
    (a dropped link), ``checkpoint_every`` (s), ``passes``, ``extra_passes`` and
    ``max_pass_se`` (more passes, one at a time, for ops whose passes leave their
    latency less certain than that standard error), ``group_ops`` and
    ``group_bytes`` (the size of an interleaved group), ``log``, and
    ``reference_level_ms``: the reference level of a new table (e.g. another
    table's, to make the two comparable); a table that has one keeps it.
    ``deadline`` (a ``time.monotonic()`` value): no group is started after it;
    the groups already measuring finish and are kept, the rest are counted in
    ``report.not_started`` (a time budget, not an error).
    """
    opts = BuildOptions(**options)
    opts.check()
    out = Path(out)
    check_writable(out)
    with table_lock(out):
        return _build_locked(specs, backends, out, opts)


def _build_locked(specs, backends, out: Path, opts: BuildOptions) -> BuildReport:
    table = read_table(out) if out.exists() else LatencyTable.new()
    t0 = time.monotonic()
    config = {"seed": opts.seed, "protocol": protocol_for(table.meta, opts.protocol)}
    sessions: list[AgentSession | None] = list(open_sessions(
        backends, config, opts.max_reconnects, opts.backoff, opts.log))
    try:
        hellos = [s.hello for s in sessions]
        _check_devices(backends, hellos, table, out, opts.allow_mixed)
        prior = {} if opts.remeasure else ok_rows(table)
        keys = {(h["fingerprint_id"], environment_key(h["environment"], h["device"]))
                for h in hellos}
        need = passes_needed(specs, prior, keys, opts.passes)
        groups = plan_groups(specs, need, opts.seed, opts.group_ops, opts.group_bytes)
        rec = _recorder(out, table, prior, hellos, opts)
        todo = {s.signature for s in specs if s.signature in need}
        report = BuildReport(out=str(out), requested=len(specs), skipped=len(specs) - len(todo),
                             devices=[b.label for b in backends], passes=opts.passes,
                             groups=len(groups))

        pass_of: dict[int, int] = {}  # backend -> pass of its last group, over every run

        def run(gs):
            _run(gs, backends, sessions, config, rec, report, opts, out, pass_of)
        if groups:
            run(groups)
        else:
            rec.flush()
        _fit_elasticity(rec, hellos, report, opts)
        _extra_passes(specs, keys, rec, report, opts, run)
    finally:
        close_all(sessions)
    report.wall_s = time.monotonic() - t0
    _describe_machine(report, table, hellos, rec)
    return report


def _fit_elasticity(rec: Recorder, hellos, report: BuildReport, opts: BuildOptions) -> None:
    """A new table's elasticity, fitted on its first passes (before the extra passes, which
    then go to the ops whose passes disagree once carried with it); see
    :meth:`Recorder.fit_elasticity`."""
    for h in hellos:
        fitted = rec.fit_elasticity(h)
        if fitted is None:
            continue
        report.elasticity = fitted
        opts.log(f"elasticity {fitted['elasticity']:g} fitted on {fitted['ops']} ops' passes "
                 f"(one op's passes apart by {100 * fitted['disagreement']:.2f} % in the mean, "
                 f"{100 * fitted['disagreement_default']:.2f} % with the protocol's "
                 f"{fitted['default']:g}); every row is carried to the level with it")


def _extra_passes(specs, keys, rec: Recorder, report: BuildReport, opts: BuildOptions,
                  run: Callable[[list], None]) -> None:
    """Up to ``opts.extra_passes`` more passes, one at a time, for the ops whose passes still
    leave their latency less certain than ``opts.max_pass_se`` (each in a fresh process).
    With ``opts.extra_context`` each extra pass builds every measured op in a sweep's order
    and times only those (:func:`plan_extra`); without, it builds them alone."""
    cap = opts.passes + opts.extra_passes
    for e in range(opts.extra_passes):
        if opts.deadline is not None and time.monotonic() >= opts.deadline:
            return
        need = unsettled(specs, ok_rows(rec.table), keys, opts.passes, cap, opts.max_pass_se)
        if not need:
            return
        opts.log(f"extra pass {e + 1} of {opts.extra_passes}: {len(need)} op(s) whose passes "
                 f"leave their latency uncertain by more than {100 * opts.max_pass_se:.2f} %")
        report.extra_ops += len(need)
        index = opts.passes + e
        if opts.extra_context:
            measured = {sig for sig, *_ in ok_rows(rec.table)} - rec.failed
            run(plan_extra(specs, need, measured, index, opts.seed, opts.group_ops,
                           opts.group_bytes))
        else:
            run(plan_groups(specs, need, opts.seed, opts.group_ops, opts.group_bytes,
                            first_pass=index))


def _recorder(out, table, prior, hellos, opts: BuildOptions) -> Recorder:
    """The recorder of a build, with every device noted (and a given reference level set)."""
    agent_protocol = hellos[0].get("protocol") or opts.protocol or {}
    rec = Recorder(out, table, prior, opts.checkpoint_every, agent_protocol)
    for h in hellos:
        rec.note_device(h, agent_protocol)
        if opts.reference_level_ms is None:
            continue
        held = rec.level(h)
        if held is None:
            rec.adopt_level(h, opts.reference_level_ms, "given (--reference-from / level)",
                            opts.reference_elasticity)
        elif not math.isclose(held, opts.reference_level_ms, rel_tol=1e-9):
            # the table's rows are at its own level, and new ones must be too
            opts.log(f"{out} keeps its own reference level {held:.4g} ms; the given "
                     f"{opts.reference_level_ms:.4g} ms is not used (`hwprof table rescale "
                     f"{out} --reference-from ...` carries a table to another's level)")
    return rec


def _describe_machine(report: BuildReport, table: LatencyTable, hellos, rec: Recorder) -> None:
    from hwprof.latency.machine import combined_movement
    levels = [table.meta.get("reference", {}).get("levels", {}).get(device_key(h), {})
              for h in hellos]
    report.reference_level_ms = levels[0].get("level_ms") if levels else None
    report.reference_elasticity = levels[0].get("elasticity") if levels else None
    # this build's groups, however many the table kept: slicing the kept list by its length
    # before the build gave nothing once it was full (a 60-group build reported no movement)
    report.machine = combined_movement(rec.timelines)


class _Tally:
    """What the runner reports, recorded and counted (the runner calls it from its threads)."""

    def __init__(self, rec: Recorder, report: BuildReport, bar):
        self.rec, self.report, self.bar = rec, report, bar
        self.lock = threading.Lock()

    def answer(self, group, answer, sess, backend) -> None:
        rows = self.rec.record_group(group.specs, answer, sess.hello, backend.label)
        with self.lock:
            for row in rows:
                self._count(row["kind"], row["signature"], row["status"], row["error"],
                            row.get("sampled_s") or 0.0)

    def op_error(self, spec, err, sess, backend) -> None:
        self.rec.add(result_row(spec, {"status": "error", "error": err}, sess.hello,
                                backend.label))
        with self.lock:
            self._count(spec.kind, spec.signature, "error", err, 0.0)

    def _count(self, kind, signature, status, error, sampled_s) -> None:
        self.report.measured += 1
        self.report.sampled_s += sampled_s
        if status != "ok":
            self.report.errors += 1
            self.bar.write(f"error: {kind} {signature}: {error}")

    def progress(self, n: int) -> None:
        with self.lock:
            self.bar.update(n)


def _run_until(runner: GroupRunner, groups, deadline: float | None, width: int,
               report: BuildReport) -> int:
    """Run ``groups`` (``width`` at a time under a ``deadline``); ops left unmeasured."""
    if deadline is None:
        return runner.run(groups)
    pending, left, took = list(groups), 0, 0.0
    # a batch starts only when one as long as the last fits before the deadline
    while pending and time.monotonic() + took < deadline:
        batch, pending = pending[:width], pending[width:]
        t0 = time.monotonic()
        left += runner.run(batch)
        took = time.monotonic() - t0
    report.not_started = sum(len(g.specs) for g in pending)
    return left


def _run(groups, backends, sessions, config, rec, report, opts: BuildOptions, out,
         pass_of: dict[int, int]) -> None:
    jobs = sum(len(g.specs) for g in groups)
    sweeps = f" ({report.passes} passes)" if report.passes > 1 else ""
    bar = _progress(jobs, opts.quiet, f"measuring on {', '.join(report.devices)}{sweeps}")
    tally = _Tally(rec, report, bar)
    runner = GroupRunner(backends, sessions, config, level_of=rec.level, on_answer=tally.answer,
                         on_op_error=tally.op_error, on_progress=tally.progress, log=opts.log,
                         skip=lambda sig: sig in rec.failed, max_reconnects=opts.max_reconnects,
                         backoff=opts.backoff, pass_of=pass_of)
    try:
        left = _run_until(runner, groups, opts.deadline, len(backends), report)
    finally:
        bar.close()
        rec.flush()
        report.reconnects = runner.reconnects
    if left:
        raise BuildError(f"build stopped with {left} op(s) not measured: "
                         f"{'; '.join(runner.failures)}. {report.measured} row(s) measured in "
                         f"this run are saved in {out}; run the same command again to resume.")
