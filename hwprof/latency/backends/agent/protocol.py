"""The measurement protocol's settings and the statistics of raw samples.

The schedule itself (ops sampled in rounds, each sample paired with the
reference op) is :mod:`interleave`; the latency at the table's reference level
is :mod:`refstats`. Standard library only: this module runs on the device.
"""

import math

# Op samples near the level are carried to it with elasticity 0.5 (agent 15): a sample y timed
# beside a reference level x counts as y * (level / x) ** 0.5. Agents 11-14 carried them as
# their ratio to the reference (elasticity 1), agents 2-10 along a slope fitted per op and pass.
# The fitted slope is flattened by the reference's own timing noise over the few per cent it
# moves inside the +-10 % window (errors in the regressor: median fits 0.05-0.55), so a build
# that sat above the level kept its rows above it; elasticity 1 fixed that (2026-12-04, on one
# MBConv as the reference: two builds within +-5 % on mbv2-cifar 98.7 / 98.7 % against fitted
# 97.3 / 94.7 %). Against the basket reference (agent 12 on) ops follow it about half-way: a
# whole B build of mbv2-cifar whose reference read 3.6 % above A's read its ops 2.1 % slower
# (median B/A of the raw samples; carried with 1 -1.0 %, with 0.5 +0.5 %), and a ReLU6 whose
# raw time was 0.0851-0.0872 ms in every fast pass of 32 builds read 0.082-0.090 ms once
# carried as a ratio. Every kept pass of 32 pairs of builds 10-16 min
# apart (24 mbv2-cifar, 8 mbv2-mini, 2026-12-04/05) derived again on the very same samples
# (scripts/reestimate_passes.py, rows by the lower half of their passes): the median |B/A - 1|
# of a pair is lower with 0.5 than with 1 in 31 of the 32 pairs (mean 0.42 against 0.62 % on
# mbv2-cifar, 0.27 against 0.50 % on mbv2-mini; flat between 0.3 and 0.6), ops outside +-5 %
# 1 of 2,160 against 4, the pair's common shift 0.17 against 0.42 % in the mean. An op that
# follows the reference more than that (a k7 MBConv at 16x16) is carried a little short, which
# the window bounds: a sample is carried at most ~5 %.
OP_ELASTICITY = 0.5

# The reference every sample is paired with (reference_ops.PLANS): a basket of three unlike
# small blocks since agent 12, one MBConv until then. With one op as the reference, a build's
# every row moves with that op's own drift against the rest: two builds of mbv2-mini 13 min
# apart (2026-12-04, agent 11) had bn, conv2d, fc and MBConvs alike 2.7-3.3 % slower against
# it in the second (93.3 % of ops within +-5 %), while one build's passes (each its own
# process) sat within +-0.7 % of each other. Dividing the rows of six pairs of builds 12-15 min
# apart (all carried as ratios) by the mean of 3 random ones of their own ops instead left a
# median common shift of 0.3-0.6 % where the MBConv's was -0.6 to +2.9 %, and put 97.6 % of
# that mbv2-mini pair within +-5 % (scripts/simulate_reference_basket.py). Side by side in one
# run on a calm evening (the MBConv did not drift then) the basket did as well (98.7 / 100 %)
# in the same build time. Tables measured against the MBConv are still measured against it:
# the host asks for the reference a table's plan names (reference.protocol_for).
REFERENCE = "basket"

# An extra pass times the few ops of a sweep whose passes disagreed, in a process that builds
# the whole sweep's group (agent 13): with the rest of the group only built, each timed op was
# sampled beside the reference alone, with its own and the reference's data warm, and read
# apart from its sweeps (60 rows with extra passes in mbv2-cifar / mini builds of 2026-12-05:
# median +1.7 %; a k7 MBConv e3 at 1x32x16x16 -4.3 % in one build, the e6 +4.7 and +5.4 % in
# two, a two-level ReLU6 up to +10 %). Side by side, mbv2-cifar (2026-12-05, two instances of
# each): extras over their own sweeps a median 1.024 with the group only built, 0.998 with it
# sampled.
# Since agent 16 the group's other ops are sampled too, in the same rounds and by the same
# rules, and their samples thrown away, so an extra pass is a sweep that reports a few ops.
SAMPLE_CONTEXT = True

# Defaults of the protocol; every build records the settings it used.
DEFAULTS = {
    "settle_s": 0.3,         # the device runs the reference op this long before the first group
    "warmup_s": 0.01,        # time spent calling an op before sampling
    "min_warmup_calls": 2,
    "min_sample_ms": 0.5,    # a sample times a block of calls lasting at least this long
    "min_samples": 12,       # paired samples (rounds) per op at least ...
    "max_samples": 400,      # ... and at most
    "target_ci": 0.015,      # an op is done when the 95 % CI of its latency is within +-1.5 %,
    "min_side": 3,           # this many of its samples lie on each side of the level,
    "min_span_s": 10.0,      # and its samples span this long (slow drifts: see BUILD_PASSES)
    "time_cap_s": 5.0,       # ... or when this much time was spent sampling the op
    "unstable_cv": 0.10,     # rows whose robust spread (IQR / median) is larger are flagged
    "instances": 2,          # each op is built this many times; its samples take them in turn
    "ref_gap_ms": 0.0,       # the reference is timed once this much op sampling has passed since
                             # its last sample (0: after every op sample); the op samples between
                             # two reference samples are paired with their mean
    "elasticity": OP_ELASTICITY,  # every sample is carried to the level with this elasticity, as its
                             # ratio to the reference (see OP_ELASTICITY); None: each op's is fitted
                             # on its samples (agents 2-10)
    "reference": REFERENCE,  # the reference op: "basket" or "mbconv" (reference_ops.PLANS)
    "max_span_s": None,      # an op whose samples span this long stops, bracketed or not (the
                             # machine has not come near the level in that time); None: no limit
    "prime_ms": 0.0,         # as many untimed calls of the same instance as fit in this time
                             # right before each timed block; 0: none (NETWORK_PRIME_MS)
    "ref_prime_calls": 0,    # untimed calls of the reference right before each of its timed
                             # blocks; 0: none (NETWORK_REF_PRIME_CALLS)
    "placement_jitter": 0,   # bytes: a block of random size up to this is taken from the C heap
                             # around each timed op block, so its per-call buffers land elsewhere
                             # each time (placement.py); 0: none
    "sample_context": SAMPLE_CONTEXT,  # an extra pass's context ops (built, never a result) are
                             # sampled in the rounds as spacers (interleave.run_group)
}

# A space's table is measured in this many passes, each in a fresh agent process, and a row
# keeps the geometric mean of the lower half of its passes (build-table --passes;
# hwprof.latency.passes says why): three 10-s
# spans in three processes hold better than one 30-s span in one process.
BUILD_PASSES = 3
# ... and the ops whose passes still disagree (a standard error above passes.PASS_SE) get up
# to this many more, one at a time, each in a fresh process (build-table --extra-passes):
# side by side on 2026-12-03, two builds 14.5 min apart agreed within +-5 % on 100 % of
# mbv2-cifar's and mbv2-mini's ops with them, 96.0 % and 93.3 % without (docs/MEASUREMENTS.md, issue 12).
# Since agent 13 an extra pass builds every measured op in a sweep's order and times only the
# unsettled ones (buildplan.plan_extra): built alone they sat a median 2.6 % above their own
# row's sweeps, built so 0.6 % (2026-12-05, two side-by-side runs on mbv2-cifar).
BUILD_EXTRA_PASSES = 4

# Whole networks (measure-arch, calibrate, the search's loop): the networks of one call share
# NETWORK_SAMPLING_S of sampling (each at least 5 s), and their samples span at least
# NETWORK_MIN_SPAN_S (hwprof.latency.endtoend.network_protocol explains both).
NETWORK_SAMPLING_S = 60.0
NETWORK_MIN_SPAN_S = 15.0
# The search's own sessions (its calibration and closed loop; `hwprof search --min-span`) span
# less: a loop session costs its span plus about a second, a fixed cost against searches of
# a minute or two, and a loop that misses its band measures again anyway. The same three
# mbv2-mini networks in 8 sessions over 9.5 min per span, side by side (2026-12-04, machine
# 1.1-1.3x; scripts/bench_e2e_repeat.py --spans 8,10,15): spread max/min 1.008-1.013 at 8 s,
# 1.021-1.023 at 10 s, 1.014-1.023 at 15 s, the spans' means within 0.2 %.
SEARCH_MIN_SPAN_S = 8.0
NETWORK_MAX_SPAN_X = 2.0   # ... and stop, bracketed or not, once they span this many times it
# ... and their samples near the level are carried to it as their ratio to the reference
# (elasticity 1), not along a slope fitted per session: a network's fitted elasticity moved
# from 0.48 to 0.85 between sessions a minute apart, and with it the whole estimate. The same
# 3 mbv2-cifar and 3 mbv2-mini networks in 8 sessions over 9 minutes (2026-12-03,
# scripts/bench_e2e_repeat.py, re-estimated on the same samples): spread max/min 1.041-1.074
# and 1.016-1.036 with elasticity 1, 1.046-1.087 and 1.036-1.056 fitted; mean level within 1 %.
NETWORK_ELASTICITY = 1.0
# ... and a short network's every timed call comes right after untimed calls of the same
# instance, as many as fit in NETWORK_PRIME_MS: a network of ~1 ms is timed one call per sample,
# and that call otherwise runs after the other networks' samples and the reference's, with its
# weights and buffers evicted by them. The same five mbv2-mini networks (0.62-0.85 ms) in one
# session each (2026-12-04, machine 1.13-1.25x): unprimed, a group of 5 read 1-3 % and a group
# of 18 15-22 % above each network measured alone; one priming call left the 18 at 4-9 % above
# the 5, three at 0-1 %. A deployed network runs call after call; its warm call is what a
# budget is about, and it must not depend on what else a session measures. Networks slower
# than that are not primed: mbv2-cifar's (20-30 ms) read 1-4 % apart in groups of 5 and 18
# unprimed, and a second call of such a network before the reference slows the reference
# itself (0.79 -> 0.89 ms after one vs two calls of a 25-ms network, 0.71 ms after none:
# the reference reads cold: a 2-10 ms pause does not help, two untimed reference calls do),
# which would carry every latency ~12 % lower.
NETWORK_PRIME_MS = 3.0
# ... and the reference op of a network session is timed warm too: this many untimed calls of
# it come right before each of its timed blocks. Timed right after a 25-ms mbv2-cifar network it
# read 0.93 ms against 0.78 ms after another reference call (2026-12-04, one process): the
# network had evicted its data (a 2-10 ms pause did not bring it back; two reference calls did),
# so every network was carried to the table's level by a reference that looked slow. In a table
# build the reference follows ops of a few ms and reads within 2 % of warm.
NETWORK_REF_PRIME_CALLS = 2

# A first look: the same schedule with a short span and time cap, 8-16 samples per op, one
# instance, the reference timed after 10 ms of op sampling rather than after every sample, and
# every op carried to the level as the reference moves (elasticity 1): an op's fitted
# elasticity moves from build to build (by 0.17 in the median between two 16-sample builds),
# and a 7-s build sitting 20-40 % away from the level carries every sample that far with it
# (README and docs/MEASUREMENTS.md: "Measured figures"). Tables built with it are faster to
# make and less repeatable.
QUICK = {"min_span_s": 0.0, "time_cap_s": 0.1, "target_ci": 0.04, "min_samples": 8,
         "max_samples": 16, "settle_s": 0.1, "min_warmup_calls": 1, "instances": 1,
         "ref_gap_ms": 10.0, "elasticity": 1.0}

Z95 = 1.959963984540054

REFERENCES = ("basket", "mbconv")  # the names of reference_ops.PLANS

ELASTICITY_BOUNDS = (-0.5, 3.0)  # physically plausible range; clamps a slope from a narrow x range


def settings(overrides=None):
    """Protocol settings: the defaults with known keys overridden."""
    s = dict(DEFAULTS)
    for k, v in (overrides or {}).items():
        if k not in DEFAULTS:
            raise ValueError("unknown protocol setting %r; known: %s" % (k, ", ".join(DEFAULTS)))
        s[k] = v
    if not (isinstance(s["instances"], int) and s["instances"] >= 1):
        raise ValueError("protocol setting instances must be a whole number >= 1, got %r"
                         % (s["instances"],))
    e = s["elasticity"]
    lo, hi = ELASTICITY_BOUNDS
    if e is not None and not (isinstance(e, (int, float)) and lo <= e <= hi):
        raise ValueError("protocol setting elasticity must be null (fitted) or a number in "
                         "[%g, %g], got %r" % (lo, hi, e))
    if s["reference"] not in REFERENCES:
        raise ValueError("protocol setting reference must be one of %s, got %r"
                         % (", ".join(REFERENCES), s["reference"]))
    m = s["max_span_s"]
    if m is not None and not (isinstance(m, (int, float)) and m > 0):
        raise ValueError("protocol setting max_span_s must be null or a number > 0, got %r" % (m,))
    if not (isinstance(s["prime_ms"], (int, float)) and s["prime_ms"] >= 0):
        raise ValueError("protocol setting prime_ms must be a number >= 0, got %r"
                         % (s["prime_ms"],))
    if not isinstance(s["sample_context"], bool):
        raise ValueError("protocol setting sample_context must be true or false, got %r"
                         % (s["sample_context"],))
    j = s["placement_jitter"]
    if not (isinstance(j, int) and not isinstance(j, bool) and j >= 0):
        raise ValueError("protocol setting placement_jitter must be a whole number of bytes >= 0, "
                         "got %r" % (j,))
    r = s["ref_prime_calls"]
    if not (isinstance(r, int) and not isinstance(r, bool) and r >= 0):
        raise ValueError("protocol setting ref_prime_calls must be a whole number >= 0, got %r"
                         % (r,))
    if not (isinstance(s["ref_gap_ms"], (int, float)) and s["ref_gap_ms"] >= 0):
        raise ValueError("protocol setting ref_gap_ms must be a number >= 0, got %r"
                         % (s["ref_gap_ms"],))
    return s


def quantile(sorted_xs, q):
    """Linear-interpolation quantile of an already sorted list."""
    if not sorted_xs:
        raise ValueError("no samples")
    pos = (len(sorted_xs) - 1) * q
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def median_ci(sorted_xs, z=Z95):
    """Distribution-free confidence interval of the median from order statistics.

    The 1-based ranks are floor(n/2 - z*sqrt(n)/2) and ceil(1 + n/2 + z*sqrt(n)/2)
    (normal approximation to the binomial); returns (low, high), clipped to the
    sample range.
    """
    n = len(sorted_xs)
    half = z * math.sqrt(n) / 2.0
    lo = max(0, int(math.floor(n / 2.0 - half)) - 1)
    hi = min(n - 1, int(math.ceil(1 + n / 2.0 + half)) - 1)
    return sorted_xs[lo], sorted_xs[max(lo, hi)]


def summarise(samples_s, target_ci=DEFAULTS["target_ci"], unstable_cv=DEFAULTS["unstable_cv"]):
    """Statistics of per-call times (seconds in, milliseconds out)."""
    xs = sorted(x * 1e3 for x in samples_s)
    n = len(xs)
    med = quantile(xs, 0.5)
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    lo, hi = median_ci(xs)
    cv = std / mean if mean > 0 else float("inf")
    converged = n >= 2 and med > 0 and (hi - lo) / 2.0 <= target_ci * med
    iqr = quantile(xs, 0.75) - quantile(xs, 0.25)
    return {
        "median_ms": med, "mean_ms": mean, "min_ms": xs[0], "max_ms": xs[-1],
        "p10_ms": quantile(xs, 0.10), "p90_ms": quantile(xs, 0.90),
        "iqr_ms": iqr, "std_ms": std, "cv": cv,
        "ci_low_ms": lo, "ci_high_ms": hi, "n_samples": n, "converged": converged,
        # std is inflated by a single preempted sample; the IQR is not
        "unstable": (not converged) or iqr > unstable_cv * med,
    }


class ZeroTime(RuntimeError):
    """The clock saw no time pass: refusing to record a latency of 0."""


def check_positive(value_ms):
    """Refuse a latency that is not a positive finite number."""
    if not (value_ms > 0 and math.isfinite(value_ms)):
        raise ZeroTime("the timer measured %r ms per call; refusing to store it" % value_ms)
    return value_ms
