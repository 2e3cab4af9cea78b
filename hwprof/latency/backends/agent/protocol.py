"""The measurement protocol: warm up, time blocks of calls, stop on a tight CI.

Standard library only: this module runs on the device. The clock and the
synchronisation hook are parameters so the loop can be unit-tested with a fake
clock, and so CUDA runtimes can synchronise around every timed block.
"""

import math
import time

# Defaults of the protocol; every build records the settings it used.
DEFAULTS = {
    "settle_s": 0.3,         # the device runs the calibration op this long before the build
    "warmup_s": 0.01,        # time spent calling the op before sampling
    "min_warmup_calls": 2,
    "min_sample_ms": 1.0,    # a sample times a block of calls lasting at least this long
    "min_samples": 10,
    "max_samples": 300,
    "target_ci": 0.015,      # stop when the 95 % CI of the median is within +-1.5 %
    "time_cap_s": 2.0,       # ... or when this much time was spent sampling the op
    "unstable_cv": 0.10,     # rows whose robust spread (IQR / median) is larger are flagged
    "calib_every": 25,       # re-run the calibration op after this many ops
}

Z95 = 1.959963984540054


def settings(overrides=None):
    """Protocol settings: the defaults with known keys overridden."""
    s = dict(DEFAULTS)
    for k, v in (overrides or {}).items():
        if k not in DEFAULTS:
            raise ValueError("unknown protocol setting %r; known: %s" % (k, ", ".join(DEFAULTS)))
        s[k] = v
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


def measure(fn, cfg=None, clock=time.perf_counter, sync=None):
    """Time ``fn`` under the protocol; return statistics and bookkeeping.

    ``fn`` runs the op once. ``sync`` (optional) waits for the device to
    finish queued work; it is called before starting and after ending every
    timed block, so no un-synchronised launch is ever timed.
    """
    cfg = settings(cfg)
    sync = sync or (lambda: None)
    wall0 = clock()
    sync()
    t = clock()
    fn()
    sync()
    first = clock() - t

    # warm up and estimate the per-call time
    calls, t = 0, clock()
    while calls < cfg["min_warmup_calls"] or clock() - t < cfg["warmup_s"]:
        fn()
        calls += 1
    sync()
    per_call = (clock() - t) / calls
    block = max(1, int(math.ceil(cfg["min_sample_ms"] / 1e3 / per_call - 1e-9))) if per_call > 0 else 1000

    samples, sampled = [], 0.0
    stats = None
    while True:
        sync()
        t = clock()
        for _ in range(block):
            fn()
        sync()
        dt = clock() - t
        sampled += dt
        samples.append(dt / block)
        n = len(samples)
        if n >= cfg["min_samples"] or n >= cfg["max_samples"] or sampled >= cfg["time_cap_s"]:
            stats = summarise(samples, cfg["target_ci"], cfg["unstable_cv"])
            if stats["converged"] or n >= cfg["max_samples"] or sampled >= cfg["time_cap_s"]:
                break
    if stats["median_ms"] <= 0 or not math.isfinite(stats["median_ms"]):
        raise ZeroTime("the timer measured %r ms per call; refusing to store it"
                       % stats["median_ms"])
    stats.update({"block_size": block, "first_call_ms": first * 1e3, "warmup_calls": calls,
                  "sampled_s": sampled, "wall_s": clock() - wall0})
    return stats
