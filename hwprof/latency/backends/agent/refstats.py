"""Reference-paired statistics: an op's latency at a fixed reference level.

The machine changes speed while it measures (on the development VM it flips
between states every few seconds), and not every op follows it alike: a
compute-bound convolution slows down with the reference op, an elementwise op
bound by memory barely moves, a tiny op dominated by per-call overhead moves
more than the reference. So an op's samples are not divided by the reference;
each sample ``y`` is paired with the reference level ``x`` timed right beside
it, and every sample is carried to the reference level ``level`` of the
table with the op's *elasticity* ``e``: ``y * (level / x) ** e``. Since agent
15 the protocol fixes ``e`` at 0.5 for op samples (agents 11-14: 1, each sample as its ratio
to the reference; ``protocol.OP_ELASTICITY`` says why); with the protocol's ``elasticity`` null
it is d log y / d log x, a robust Theil-Sen slope over the op's samples. The op's latency is
the median of the adjusted samples taken near the level (the reference within
+-10 % of it), with the order-statistics confidence interval of that median:
the states are not a line, and a sample from a far state carries that state's
quirks with it however it is scaled (measured: two builds of mbv2-mini 12 min
apart agreed within +-5 % for 47 % of ops with every sample carried, 100 %
with the samples near the level).

A sample set is only trusted when it was seen on both sides of ``level``
(``min_side`` samples at least with ``x <= level`` and with ``x >= level``)
and near it (``min_near``): then the latency is interpolated from the states
around the level, not extrapolated from a far one. A set with too few samples
near the level (a network measured while the machine stayed away from the
table's state) is carried there as its ratio to the reference
(:data:`FAR_ELASTICITY`), not along a slope fitted over a narrow range.

Standard library only: the agent uses it for its stopping rule, and the host
for the rows it writes.
"""

import math

from .protocol import ELASTICITY_BOUNDS, Z95, median_ci, quantile

# Where no samples are near the level, every sample is carried there as the op's ratio to the
# reference (elasticity 1), not with its fitted elasticity: a slope fitted over one session's
# narrow range of states is poorly determined (the same op's fits differ by 0.17-0.22 between
# two builds) and the error grows with the distance carried. Measured (docs/MEASUREMENTS.md, issue 12): the
# same mbv2-cifar network measured 10 times over 5 minutes, re-estimated at a level 10-25 %
# below every state the machine visited, spread 1.09-1.13x with fitted elasticities and 1.036x
# with 1; across an afternoon's change of regime, ops moved as much as the reference or more
# (median implied elasticity 1.24 on mbv2-cifar), never like a fitted 0.6.
FAR_ELASTICITY = 1.0
MAX_SLOPE_POINTS = 64  # the slope of more samples uses an evenly spaced subset (cost is n^2)


def theil_slope(xs, ys):
    """Median of the pairwise slopes (Theil-Sen); 0.0 when no pair has distinct x."""
    if len(xs) > MAX_SLOPE_POINTS:
        step = len(xs) / float(MAX_SLOPE_POINTS)
        keep = [int(i * step) for i in range(MAX_SLOPE_POINTS)]
        xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
    slopes = []
    n = len(xs)
    for i in range(n):
        for j in range(i + 1, n):
            dx = xs[j] - xs[i]
            if abs(dx) > 1e-12:
                slopes.append((ys[j] - ys[i]) / dx)
    if not slopes:
        return 0.0
    slopes.sort()
    return quantile(slopes, 0.5)


def elasticity(samples_ms, refs_ms):
    """d log(op) / d log(reference) over paired samples, clamped to ELASTICITY_BOUNDS."""
    lx = [math.log(x) for x in refs_ms]
    ly = [math.log(y) for y in samples_ms]
    e = theil_slope(lx, ly)
    lo, hi = ELASTICITY_BOUNDS
    return min(hi, max(lo, e))


def adjusted(samples_ms, refs_ms, level_ms, e):
    """Each sample carried to the reference level with elasticity ``e``."""
    return [y * (level_ms / x) ** e for y, x in zip(samples_ms, refs_ms)]


def neighbour_refs(refs_ms, k=2):
    """Each sample's machine state judged from the reference beside its ``k`` neighbours on
    either side (the op's samples before and after it), leaving out its own reference.

    Choosing which samples are near the level by their own reference selects on that
    reference's timing noise: where the machine mostly sat on one side of the level, the
    samples that pass are those whose reference read too near by chance, and their ratios
    lean the other way. The neighbours' median says what state the machine was in without
    that sample's own noise.
    """
    n = len(refs_ms)
    out = []
    for i in range(n):
        around = [refs_ms[j] for j in range(max(0, i - k), min(n, i + k + 1)) if j != i]
        out.append(quantile(sorted(around), 0.5) if around else refs_ms[i])
    return out


def estimate(samples_ms, refs_ms, level_ms, target_ci=0.015, min_side=3, z=Z95,
             window=0.10, min_near=8, fixed_elasticity=None, select_refs_ms=None):
    """The latency of an op at reference level ``level_ms`` from paired samples.

    The samples taken while the reference was within ``window`` (relative) of
    the level are carried to it with the op's elasticity and their median is
    the latency: the machine's states are not a line, and samples far from
    the level (another state) carry their state's quirks with them. With
    fewer than ``min_near`` such samples every sample is carried, with
    elasticity :data:`FAR_ELASTICITY` (the fallback; ``bracketed`` is then
    False). ``fixed_elasticity`` (a number) replaces the elasticity in both
    cases (the quick protocol's few samples cannot fit one). Measured for the far case
    (2026-12-05): the 22 rows of a dwconv2d training table (agent 16, 1 pass each) whose
    machine sat 1.10-1.20x above the level, predicted by a model fitted on the other 976,
    read a median 0.971 of the prediction carried with 0.5 and 0.911 with 1 (these large,
    memory-bound ops follow the reference less than one for one); an ONNX Runtime 2-thread
    pass far above the level read 0.998 / 0.939 of the same ops' near passes (median).
    ``select_refs_ms`` (e.g. :func:`neighbour_refs`), when given, says which samples are
    near the level instead of their own references; each sample is still carried by its own.

    Returns latency_ms, its CI (ci_low_ms, ci_high_ms), the elasticity, the
    counts of samples below and above the level and near it, ``bracketed``
    (at least ``min_side`` samples on each side and ``min_near`` near it), the
    median reference level seen, and ``converged``: the CI half-width is
    within ``target_ci`` of the latency and the samples bracket the level.
    """
    if not samples_ms or len(samples_ms) != len(refs_ms):
        raise ValueError("estimate needs as many reference levels as samples (and at least one)")
    lo_x, hi_x = level_ms / (1.0 + window), level_ms * (1.0 + window)
    chosen_by = refs_ms if select_refs_ms is None else select_refs_ms
    near = [i for i, x in enumerate(chosen_by) if lo_x <= x <= hi_x]
    use = near if len(near) >= min_near else range(len(samples_ms))
    if fixed_elasticity is not None:
        e = float(fixed_elasticity)
    elif len(near) < min_near:
        e = FAR_ELASTICITY
    else:
        e = elasticity(samples_ms, refs_ms) if len(samples_ms) > 2 else 0.0
    adj = sorted(adjusted([samples_ms[i] for i in use], [refs_ms[i] for i in use], level_ms, e))
    lat = quantile(adj, 0.5)
    lo, hi = median_ci(adj, z)
    below = sum(1 for x in refs_ms if x <= level_ms)
    above = sum(1 for x in refs_ms if x >= level_ms)
    bracketed = below >= min_side and above >= min_side and len(near) >= min_near
    tight = len(adj) >= 2 and lat > 0 and (hi - lo) / 2.0 <= target_ci * lat
    refs = sorted(refs_ms)
    return {"latency_ms": lat, "latency_ci_low_ms": lo, "latency_ci_high_ms": hi,
            "latency_iqr_ms": quantile(adj, 0.75) - quantile(adj, 0.25),
            "ref_elasticity": e, "ref_below": below, "ref_above": above, "ref_near": len(near),
            "bracketed": bracketed, "converged": tight and bracketed,
            "ref_median_ms": quantile(refs, 0.5)}


def estimate_with(samples_ms, refs_ms, level_ms, cfg):
    """:func:`estimate` with the protocol settings ``cfg`` (its CI target, sides, elasticity)."""
    return estimate(samples_ms, refs_ms, level_ms, cfg["target_ci"], cfg["min_side"],
                    fixed_elasticity=cfg.get("elasticity"))


def level_of(ref_samples_ms, window=0.10, min_share=0.25):
    """The reference level a new table adopts: the centre of the reference's fastest common state.

    The machine switches between a fast and a slow state; the level is the
    median of the reference samples inside the +-``window`` band that holds the
    most of them among the bands near the fastest one holding at least
    ``min_share`` of all samples (the undisturbed state, when the machine
    visits it that often; otherwise its most visited state). Two tables built
    independently then pick the same state wherever the machine went during
    each (the most visited state alone picked the fast state in one build and
    the slow one in another); a plain median could fall between two states,
    where the machine seldom is. Being a table-wide constant, any value keeps
    the table's rows comparable with each other and with networks measured
    against it.
    """
    if not ref_samples_ms:
        raise ValueError("no reference samples")
    xs = sorted(ref_samples_ms)
    span = (1.0 + window) ** 2
    bands, j = [], 0                       # (count, lo, hi) of the band ending at each sample
    for i, x in enumerate(xs):
        while xs[j] * span < x:
            j += 1
        bands.append((i - j + 1, j, i))
    need = max(1, min_share * len(xs))
    first = next((b for b in bands if b[0] >= need), max(bands))
    near = [b for b in bands if xs[b[1]] <= xs[first[1]] * (1.0 + window)]
    _, lo, hi = max(near)
    return quantile(xs[lo:hi + 1], 0.5)
