"""The interleaved, reference-paired schedule of a group of ops.

Every op of a group is built and warmed up, then the group is sampled in
rounds: each round visits the still-active ops in a shuffled order, and every
op sample is followed by a sample of the reference op, so each op sample sits
between two reference samples (the one before it is the previous op's
follower). An op's samples are thus spread over the whole group's time, and
each carries the machine's state at that moment (the mean of its two
reference neighbours).

An op leaves the rounds when its latency at the reference level is known
(:func:`refstats.estimate` converged: tight CI and samples on both sides of
the level) and its samples span ``min_span_s`` (on the development VM the
ratio of an op to the reference still drifts by a few per cent over tens of
seconds: a span of 30-40 s averages that out), or when its sampling time
reaches ``time_cap_s``, or after ``max_samples`` samples; never before
``min_samples``. Sampling is paced so that ``max_samples`` are not used up
before ``min_span_s`` has passed: an op past ``min_samples`` sits out a round
while it is ahead of ``max_samples`` spread evenly over the span (otherwise
the fast ops of a small group would reach the sample cap in the first seconds,
and their samples would cover only the machine states of those seconds). A
round in which every op sits out times the reference alone, so the timeline
goes on. With ``ref_gap_ms`` > 0 (the quick protocol) the reference is timed
after that much op sampling instead of after every op sample (:class:`Pairing`).

``spacers`` are ops sampled in the rounds like the others, by the same pacing and
stopping rule, whose samples are thrown away: the rounds end once every timed op is
done. An extra pass times a few unsettled ops of a sweep's group; with the rest of the
group as spacers each of them is sampled between the same kind of neighbours as in
the sweep (protocol setting ``sample_context``).

Standard library only; the clock and the synchronisation hook are parameters
so the schedule can be tested with a fake clock that switches speed states.
"""

import math
import random

from . import refstats


def block_size(per_call_s, min_sample_ms):
    """Calls per sample so that a sample lasts at least ``min_sample_ms``."""
    if per_call_s <= 0:
        return 1000
    return max(1, int(math.ceil(min_sample_ms / 1e3 / per_call_s - 1e-9)))


class Timer:
    """Times blocks of calls of one op, synchronised around each block.

    ``more`` are other instances of the same op (each built anew, with buffers
    of its own): successive blocks take the instances in turn, so an op's
    samples average where its buffers happened to land (on the development VM
    one instance of a small op can sit 4-6 % off another, in every process).

    With ``prime_ms`` > 0, as many untimed calls of the same instance as fit in
    that time come right before each timed block (none for an op slower than
    that), so the block finds that instance's weights and buffers where its own
    calls left them, whatever ran in between (the other ops of the group, the
    reference): whole networks are measured so (``protocol.NETWORK_PRIME_MS``).
    ``prime_calls`` is a fixed number of such calls, however long they take (the
    reference op of a network session: ``protocol.NETWORK_REF_PRIME_CALLS``).
    ``jitter`` (a :class:`placement.HeapJitter`) moves where each block's per-call
    buffers land (protocol setting ``placement_jitter``).
    """

    def __init__(self, fn, clock, sync, more=(), prime_ms=0.0, prime_calls=0, jitter=None):
        self.fn, self.clock, self.sync = fn, clock, sync
        self.jitter = jitter  # placement.HeapJitter: each timed block's buffers moved, or None
        self.fns = [fn, *more]
        self.block = 1
        self.prime_ms, self.prime_calls, self.prime = prime_ms, prime_calls, 0
        self._turn = 0

    def _next_fn(self):
        fn = self.fns[self._turn % len(self.fns)]
        self._turn += 1
        return fn

    def time_block(self, n=None):
        n = n or self.block
        fn = self._next_fn()
        spacer = self.jitter.take() if self.jitter is not None else None
        try:
            for _ in range(self.prime):
                fn()
            self.sync()
            t = self.clock()
            for _ in range(n):
                fn()
            self.sync()
            return (self.clock() - t) / n
        finally:
            if spacer is not None:
                self.jitter.give(spacer)

    def warm_up(self, cfg):
        """First call, then warm-up calls of every instance in turn; sets the block size.
        Returns (first_s, calls): the first call of the first instance, and the calls."""
        first = self.time_block(1)
        calls, t = 0, self.clock()
        least = cfg["min_warmup_calls"] * len(self.fns)
        while calls < least or self.clock() - t < cfg["warmup_s"]:
            self._next_fn()()
            calls += 1
        self.sync()
        per_call = (self.clock() - t) / calls
        self.block = block_size(per_call, cfg["min_sample_ms"])
        by_time = int(self.prime_ms / 1e3 / per_call + 1e-9) if per_call > 0 else 0
        self.prime = max(self.prime_calls, by_time)
        self._turn = 0
        return first, calls


class OpRecord:
    """One op's paired samples while its group runs."""

    def __init__(self, op_id, timer):
        self.id, self.timer = op_id, timer
        self.samples_ms, self.refs_ms, self.at_s = [], [], []
        self.sampled_s = 0.0
        self.first_call_ms, self.warmup_calls = None, 0
        self.error = None
        self.stop_reason = None
        self._next_check = 0

    def done(self, cfg, level_ms):
        n = len(self.samples_ms)
        if n < cfg["min_samples"]:
            return False
        span = self.at_s[-1] - self.at_s[0]
        if n >= cfg["max_samples"]:
            self.stop_reason = "max_samples"
        elif self.sampled_s >= cfg["time_cap_s"]:
            self.stop_reason = "time_cap"
        elif cfg.get("max_span_s") and span >= cfg["max_span_s"]:
            self.stop_reason = "max_span"
        elif span >= cfg["min_span_s"] and n >= self._next_check and self._converged(cfg, level_ms):
            self.stop_reason = "converged"
        return self.stop_reason is not None

    def _converged(self, cfg, level_ms):
        # the estimate sorts every sample: with thousands (a network), it is redone once the
        # samples grew by 2 %, not every round
        self._next_check = len(self.samples_ms) * 1.02
        return refstats.estimate_with(self.samples_ms, self.refs_ms, level_ms, cfg)["converged"]


def due(rec, cfg, now):
    """Whether ``rec`` takes a sample in this round (see the pacing in the module doc)."""
    n = len(rec.samples_ms)
    if n < cfg["min_samples"] or cfg["min_span_s"] <= 0:
        return True
    return n < cfg["max_samples"] * min(1.0, (now - rec.at_s[0]) / cfg["min_span_s"])


class Pairing:
    """The reference's side of the rounds: its timeline, and op samples paired with it.

    An op sample waits until the next reference sample, and is paired with the
    mean of that one and the one before it. With ``ref_gap_ms`` 0 the reference
    is timed after every op sample; otherwise once that much op sampling has
    passed since its last sample (the machine changes state every few seconds,
    so op samples a few ms apart share one), and at the end of every round.
    """

    def __init__(self, ref, clock, gap_ms=0.0):
        self.ref, self.clock, self.gap_s = ref, clock, gap_ms / 1e3
        self.t0 = clock()
        self.prev = ref.time_block() * 1e3
        self.timeline = [(0.0, self.prev)]
        self.pending, self.since_s = [], 0.0

    def reference(self):
        """Time the reference once; pair the waiting op samples with it."""
        r = self.ref.time_block() * 1e3
        self.timeline.append((self.clock() - self.t0, r))
        for rec, y_ms, at in self.pending:
            rec.samples_ms.append(y_ms)
            rec.refs_ms.append((self.prev + r) / 2.0)
            rec.at_s.append(at)
        self.pending, self.since_s, self.prev = [], 0.0, r

    def op_sample(self, rec, y_s):
        self.pending.append((rec, y_s * 1e3, self.clock() - self.t0))
        block_s = y_s * rec.timer.block
        rec.sampled_s += block_s
        self.since_s += block_s
        if self.since_s >= self.gap_s:
            self.reference()

    def end_round(self):
        if self.pending:
            self.reference()


def run_group(records, ref, cfg, clock, level_ms=None, seed=0, progress=None, spacers=()):
    """Sample ``records`` (warmed up) in rounds paired with ``ref`` (a warmed :class:`Timer`).

    ``level_ms`` is the table's reference level, or None (a new table): the
    reference's fastest common state so far (refstats.level_of) stands in for the stopping rule.
    ``spacers`` (warmed up too) take their turns in the rounds until every record is done
    (see the module doc); what they collect is not a result.
    Returns the reference timeline: (seconds since the start, ms) per sample.
    """
    rng = random.Random("hwprof-rounds:%s" % seed)
    pairing = Pairing(ref, clock, cfg.get("ref_gap_ms", 0.0))
    active = [r for r in records if r.error is None]
    idle = [r for r in spacers if r.error is None]
    rounds = 0
    while active:
        now = clock() - pairing.t0
        order = [rec for rec in active + idle if due(rec, cfg, now)]
        rng.shuffle(order)
        if not order:  # every op is ahead of its pace: the reference alone marks the time
            pairing.reference()
        for rec in order:
            try:
                y = rec.timer.time_block()
            except Exception as e:  # noqa: BLE001  (the op's own failure: an error row)
                rec.error = "%s: %s" % (type(e).__name__, e)
                continue
            pairing.op_sample(rec, y)
        pairing.end_round()
        rounds += 1
        level = level_ms or refstats.level_of([v for _, v in pairing.timeline])
        active = [rec for rec in active if rec.error is None and not rec.done(cfg, level)]
        idle = [rec for rec in idle if rec.error is None and not rec.done(cfg, level)]
        if progress is not None:
            progress(rounds, len(active))
    return pairing.timeline
