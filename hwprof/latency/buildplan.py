"""Planning a build: which ops still need how many passes, cut into groups.

Pure bookkeeping, no device: the rows a table already holds decide what is
left to measure (a resumed or extended build measures only that), and the
work is cut into *groups*, the unit the agent samples in interleaved rounds
beside the reference op (see :mod:`hwprof.latency.backends.agent.interleave`).
A group holds at most ``group_ops`` ops and about ``group_bytes`` of memory
(tensors and convolution workspace), since all of its ops are built at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from hwprof.latency.passes import done_passes, pass_order, pass_se
from hwprof.latency.specs import OpSpec, workspace_bytes

GROUP_OPS = 100
GROUP_BYTES = 1 << 30  # memory built at once by one group (tensors and convolution workspace)


@dataclass
class Group:
    """Ops measured together, interleaved, in one pass."""

    id: str
    specs: list[OpSpec]
    pass_index: int = 0
    losses: int = 0  # times the agent was lost while this group was sampled in rounds
    warmed: set[str] = field(default_factory=set)  # op ids warmed up in the current try
    # every op the agent builds and warms up for this group, in order, when that is more than
    # ``specs`` (the ops it times): an extra pass built like a sweep (see plan_extra)
    context: list[OpSpec] | None = None

    def build_list(self) -> list[OpSpec]:
        """The ops the agent builds, in order: the context, or the timed ops alone."""
        return self.context if self.context is not None else self.specs


def passes_needed(specs: Sequence[OpSpec], prior: dict[tuple, dict], keys: Iterable[tuple],
                  passes: int) -> dict[str, int]:
    """signature -> passes still to measure, over every (fingerprint, env_key) in ``keys``."""
    keys = list(keys)
    need = {}
    for s in specs:
        have = min(done_passes(prior.get((s.signature, fp, env))) for fp, env in keys)
        if have < passes:
            need[s.signature] = passes - have
    return need


def unsettled(specs: Sequence[OpSpec], rows: dict[tuple, dict], keys: Iterable[tuple],
              passes: int, max_passes: int, max_se: float) -> dict[str, int]:
    """signature -> 1 for ops due one extra pass: every key's row has its ``passes`` and
    fewer than ``max_passes``, and on some key the passes leave the latency less certain
    than ``max_se`` (:func:`hwprof.latency.passes.pass_se`)."""
    keys = list(keys)
    need = {}
    for s in specs:
        got = [rows.get((s.signature, fp, env)) for fp, env in keys]
        counts = [done_passes(r) for r in got]
        if min(counts) < passes or min(counts) >= max_passes:
            continue  # not measured (an error row, or a deadline) or already at the cap
        if max(pass_se(r) for r in got) > max_se:
            need[s.signature] = 1
    return need


def _op_bytes(spec: OpSpec) -> int:
    """What building ``spec`` takes: its tensors and its convolutions' workspace."""
    f = spec.features()
    tensors = int(f.get("bytes_read", 0) or 0) + int(f.get("bytes_written", 0) or 0)
    return tensors + workspace_bytes(spec)


def chunk(specs: Sequence[OpSpec], group_ops: int = GROUP_OPS,
          group_bytes: int = GROUP_BYTES) -> list[list[OpSpec]]:
    """Consecutive chunks of ``specs`` within both limits (an op over the byte limit goes alone)."""
    if group_ops < 1:
        raise ValueError(f"group_ops must be at least 1, got {group_ops}")
    out: list[list[OpSpec]] = []
    cur: list[OpSpec] = []
    size = 0
    for s in specs:
        b = _op_bytes(s)
        if cur and (len(cur) >= group_ops or size + b > group_bytes):
            out.append(cur)
            cur, size = [], 0
        cur.append(s)
        size += b
    if cur:
        out.append(cur)
    return out


def plan_extra(specs: Sequence[OpSpec], need: dict[str, int], measured: Iterable[str],
               pass_index: int, seed: int = 0, group_ops: int = GROUP_OPS,
               group_bytes: int = GROUP_BYTES) -> list[Group]:
    """One extra pass that times the ops in ``need`` but builds like a sweep: the ops of
    ``specs`` in ``measured`` (and those in ``need``) in the pass's shuffled order, cut into
    the sweep's groups; a group keeps them all as its context and times its ops in ``need``
    (groups with none are dropped).

    Why: an op's latency can sit in one of two levels according to where its buffers land,
    and that follows what the process allocated before it. An extra pass holding only the
    unsettled ops is a history of its own, and on the development VM it landed in the slow
    level about twice as often as the sweeps did (docs/MEASUREMENTS.md, issue 12); a sweep's history is what
    the ops' other passes, and a network's, are built in.
    """
    sweep = plan_groups(specs, dict.fromkeys(set(measured) | set(need), 1), seed, group_ops,
                        group_bytes, first_pass=pass_index)
    groups = []
    for g in sweep:
        timed = [s for s in g.specs if s.signature in need]
        if timed:
            g.context, g.specs = g.specs, timed
            groups.append(g)
    return groups


def plan_groups(specs: Sequence[OpSpec], need: dict[str, int], seed: int = 0,
                group_ops: int = GROUP_OPS, group_bytes: int = GROUP_BYTES,
                first_pass: int = 0) -> list[Group]:
    """The groups of every pass, pass after pass (each later pass in its own shuffled order);
    passes are numbered from ``first_pass`` (extra passes after a build's own)."""
    todo = [s for s in specs if s.signature in need]
    groups: list[Group] = []
    for p in range(max(need.values(), default=0)):
        index = first_pass + p
        sweep = pass_order([s for s in todo if need[s.signature] > p], index, seed)
        for i, part in enumerate(chunk(sweep, group_ops, group_bytes)):
            groups.append(Group(id=f"p{index}g{i}", specs=part, pass_index=index))
    return groups
