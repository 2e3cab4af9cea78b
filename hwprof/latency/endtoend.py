"""End-to-end latency of whole networks, measured through a backend.

An architecture becomes one ``sequence`` op spec (``Space.arch_network``):
the agent builds the whole network as one nnabla graph and times its
``forward()`` under the same interleaved, reference-paired protocol as single
ops, on any device a backend reaches. ``measure-arch`` and ``calibrate`` both measure here; the numbers
then go to the predictors package (which never talks to hardware) to fit the
calibration.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Sequence

from hwprof.errors import DeviceError, UserError
from hwprof.latency import reference
from hwprof.latency.backends.agent.protocol import (
    NETWORK_ELASTICITY,
    NETWORK_MAX_SPAN_X,
    NETWORK_MIN_SPAN_S,
    NETWORK_PRIME_MS,
    NETWORK_REF_PRIME_CALLS,
    NETWORK_SAMPLING_S,
)
from hwprof.latency.machine import movement
from hwprof.latency.specs import OpSpec

log = logging.getLogger("hwprof")


def random_choices(space, n: int, seed: int = 0) -> list[list[str]]:
    """``n`` distinct random architectures of ``space`` (uniform per layer), reproducibly."""
    if n < 1:
        raise UserError(f"the number of architectures must be at least 1, got {n}")
    rng = random.Random(f"hwprof-arch:{seed}:{space.name}")
    total = 1
    for lay in space.layers:
        total *= len(lay.candidates)
    if n > total:
        raise UserError(f"space {space.name!r} has only {total} architectures; asked for {n}")
    seen: set[tuple[str, ...]] = set()
    out: list[list[str]] = []
    while len(out) < n:
        c = tuple(rng.choice(lay.candidates) for lay in space.layers)
        if c not in seen:
            seen.add(c)
            out.append(list(c))
    return out


# A network's samples must span a minimum time too (the machine's slow drifts), but the per-op
# caps of a table build (5 s of sampling, 400 samples) would end a 50 ms network's rounds after
# 5 s. So the networks of one call share NETWORK_SAMPLING_S of sampling (each at least 5 s: one
# network gets a minute, a calibration's eight get 7.5 s each), and their samples span at least
# NETWORK_MIN_SPAN_S. A table op gets 10 s per pass over 3 passes in 3 processes; a whole network is sampled
# thousands of times in 15 s, and it still stops only once its samples bracket the table's
# reference level (samples on both sides of it and near it), so a window spent in one machine
# state keeps it sampling. The search's loop measures a ladder of networks per round and pays
# this span once per round.


def network_protocol(n_networks: int, protocol: dict | None = None) -> dict:
    """The protocol for measuring ``n_networks`` networks in one group (overrides win).

    A network whose samples span twice the minimum span without bracketing the level stops
    (``max_span_s``): the machine has left the table's state (its fast state drifts by 10 %
    within an hour on the development VM), and waiting for it measured 4 mini networks for
    165 s instead of 30. Samples are carried to the level as their ratio to the reference
    (``elasticity`` 1: see NETWORK_ELASTICITY)."""
    p = {"time_cap_s": max(5.0, NETWORK_SAMPLING_S / max(1, n_networks)), "max_samples": 5000,
         "min_span_s": NETWORK_MIN_SPAN_S, "elasticity": NETWORK_ELASTICITY,
         "prime_ms": NETWORK_PRIME_MS, "ref_prime_calls": NETWORK_REF_PRIME_CALLS,
         **(protocol or {})}
    if p["min_span_s"] > 0:   # with no span to wait for, the caps end it
        p.setdefault("max_span_s", NETWORK_MAX_SPAN_X * p["min_span_s"])
    return p


def measure_specs(specs: Sequence[OpSpec], backend, *, protocol: dict | None = None,
                  seed: int = 0, progress=None, expect_fingerprint: str | None = None,
                  table_meta: dict | None = None) -> tuple[list[dict[str, Any]], dict]:
    """Measure each spec (typically a whole network) as one interleaved group.

    The networks are sampled in rounds beside the reference op, as a table's
    ops are, and each result's ``latency_ms`` is the network's latency at the
    reference level of ``table_meta`` (the table it is compared with) for this
    device, so a table's sum and a measured network are comparable numbers.
    Without a table (or one with no level for this device) the session's own
    reference median is the level; ``level_source`` says which.

    Returns (results, hello). A spec that fails to build or run raises
    :class:`~hwprof.errors.DeviceError` with the agent's error: a whole-network
    latency is never made up. With ``expect_fingerprint``, a device with
    another fingerprint is refused before anything is measured. ``progress``
    is called with each of the agent's progress messages.
    """
    protocol = reference.protocol_for(table_meta or {}, protocol)
    sess = backend.open({"seed": seed, "protocol": network_protocol(len(specs), protocol)})
    try:
        hello = sess.hello
        fp = hello.get("fingerprint_id")
        if expect_fingerprint is not None and fp != expect_fingerprint:
            raise UserError(f"{backend.label} (fingerprint {fp}) is not the device the latencies "
                            f"were measured on ({expect_fingerprint}); use that device")
        level = reference.table_level(table_meta or {}, reference.device_key(hello))
        if level is None and table_meta:
            _warn_environment(table_meta, hello)
        answer = sess.measure_group("networks", [(f"n{i}", s.plan()) for i, s in enumerate(specs)],
                                    level_ms=level, seed=seed, on_progress=progress)
    finally:
        sess.close()
    source = "table" if level is not None else "session"
    machine = movement([v for _, v in answer["timeline"]])
    if level is None:
        level = reference.level_from_timeline(answer["timeline"])
    else:
        _warn_level_outside(level, machine)
    cfg = hello.get("protocol")
    results = []
    for res in answer["results"]:
        if res.get("status") != "ok":
            raise DeviceError(f"{backend.label}: the network could not be measured: "
                              f"{res.get('error') or 'unknown error'}")
        res = dict(res, **reference.latency_columns(res, level, cfg))
        res.update({"level_source": source, "machine": machine and dict(machine)})
        results.append(res)
    return results, hello


def _warn_environment(table_meta: dict, hello: dict) -> None:
    """One line on stderr when the table was measured on this device in another environment:
    its level does not apply, so the networks are measured at this session's own level."""
    diff = reference.environment_mismatch(table_meta, hello)
    if diff:
        log.warning(
            "the table was measured on this device in another environment (%s): networks are "
            "measured at this session's own reference level, not comparable with the table's "
            "rows; measure in the table's environment (e.g. the same OMP_NUM_THREADS)", diff)


# How far outside the reference's p5-p95 range of a session the table's level may lie before
# the networks' latencies count as carried beyond the machine states their samples saw.
LEVEL_OUTSIDE = 0.1


def _warn_level_outside(level_ms: float, machine: dict | None) -> None:
    """One warning when the table's level lies far outside what the reference op ran at in this
    session (a table of another day's machine state): each latency is then carried by the
    elasticity fitted on samples that never came near the level, which is not stable (a loop's
    answer measured at 0.969 of its budget re-measured at 0.783 on a table 57 % off; with the
    machine's fast state 11 % above the level, one network read 0.977-1.022 of its budget in
    four sessions). ``machine``: the session's :func:`~hwprof.latency.machine.movement`."""
    if not machine:
        return
    lo, hi = machine["p5_ms"], machine["p95_ms"]
    away = max(lo / level_ms, level_ms / hi) - 1.0
    if away > LEVEL_OUTSIDE:
        log.warning(
            "the table's reference level (%.3f ms) lies %.0f %% outside what the reference op "
            "ran at in this session (p5-p95 %.3f-%.3f ms): the machine is not in the state the "
            "table was measured in, and the networks' latencies are carried that far (less "
            "precise); a table built anew (a new --out) takes the present state as its level",
            level_ms, 100 * away, lo, hi)


def measure_archs(space, choices_list: Sequence[Sequence[str]], backend, *,
                  protocol: dict | None = None, seed: int = 0, progress=None,
                  expect_fingerprint: str | None = None, table_meta: dict | None = None
                  ) -> tuple[list[dict[str, Any]], dict]:
    """End-to-end results of architectures of ``space`` (one group for all)."""
    nets = [space.arch_network(c) for c in choices_list]
    return measure_specs(nets, backend, protocol=protocol, seed=seed, progress=progress,
                         expect_fingerprint=expect_fingerprint, table_meta=table_meta)


def result_summary(res: dict[str, Any]) -> dict[str, Any]:
    """The figures of one end-to-end result worth printing."""
    keys = ("latency_ms", "latency_ci_low_ms", "latency_ci_high_ms", "ref_level_ms",
            "level_source", "ref_elasticity", "median_ms", "min_ms", "iqr_ms", "n_samples",
            "converged", "unstable", "sampled_s", "machine")
    return {k: res.get(k) for k in keys}
