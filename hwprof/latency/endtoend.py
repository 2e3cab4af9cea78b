"""End-to-end latency of whole networks, measured through a backend.

An architecture becomes one ``sequence`` op spec (``Space.arch_network``):
the agent builds the whole network as one nnabla graph and times its
``forward()`` under the same protocol as single ops, on any device a backend
reaches. ``measure-arch`` and ``calibrate`` both measure here; the numbers
then go to the predictors package (which never talks to hardware) to fit the
calibration.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from hwprof.errors import DeviceError, UserError
from hwprof.latency.specs import OpSpec


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


def measure_specs(specs: Sequence[OpSpec], backend, *, protocol: dict | None = None,
                  seed: int = 0, progress=None, expect_fingerprint: str | None = None,
                  rounds: int = 1) -> tuple[list[dict[str, Any]], dict]:
    """Measure each spec (typically a whole network) in one agent session.

    Returns (results, hello). A spec that fails to build or run raises
    :class:`~hwprof.errors.DeviceError` with the agent's error: a whole-network
    latency is never made up. With ``expect_fingerprint``, a device with
    another fingerprint is refused before anything is measured. With
    ``rounds`` > 1 every spec is measured that many times, round-robin, and
    the round with the lowest median is kept (``rounds_median_ms`` lists them
    all): on a shared machine a spec measured while another process held the
    CPU gets more chances to be measured alone.
    """
    if rounds < 1:
        raise UserError(f"rounds must be at least 1, got {rounds}")
    sess = backend.open({"seed": seed, "protocol": dict(protocol or {})})
    results = []
    try:
        fp = sess.hello.get("fingerprint_id")
        if expect_fingerprint is not None and fp != expect_fingerprint:
            raise UserError(f"{backend.label} (fingerprint {fp}) is not the device the latencies "
                            f"were measured on ({expect_fingerprint}); use that device")
        runs: list[list[dict[str, Any]]] = [[] for _ in specs]
        for _ in range(rounds):
            for i, spec in enumerate(specs):
                res = sess.measure(spec.signature, spec.plan())
                if res.get("status") != "ok":
                    raise DeviceError(f"{backend.label}: the network could not be measured: "
                                      f"{res.get('error') or 'unknown error'}")
                runs[i].append(res)
                if progress:
                    progress(i, spec, res)
        for tries in runs:
            best = dict(min(tries, key=lambda r: r["median_ms"]))
            best["rounds_median_ms"] = [r["median_ms"] for r in tries]
            results.append(best)
        hello = sess.hello
    finally:
        sess.close()
    return results, hello


def measure_archs(space, choices_list: Sequence[Sequence[str]], backend, *,
                  protocol: dict | None = None, seed: int = 0, progress=None,
                  expect_fingerprint: str | None = None, rounds: int = 1
                  ) -> tuple[list[dict[str, Any]], dict]:
    """End-to-end results of architectures of ``space`` (one session for all)."""
    nets = [space.arch_network(c) for c in choices_list]
    return measure_specs(nets, backend, protocol=protocol, seed=seed, progress=progress,
                         expect_fingerprint=expect_fingerprint, rounds=rounds)


def result_summary(res: dict[str, Any]) -> dict[str, Any]:
    """The figures of one end-to-end result worth printing."""
    keys = ("median_ms", "mean_ms", "min_ms", "p10_ms", "p90_ms", "iqr_ms", "cv", "ci_low_ms",
            "ci_high_ms", "n_samples", "converged", "unstable", "sampled_s", "rounds_median_ms")
    return {k: res.get(k) for k in keys}
