"""The placement jitter: a heap block of random size held around each timed op block."""

import pytest

from hwprof.latency.backends.agent import interleave, protocol
from hwprof.latency.backends.agent.placement import HeapJitter


class RecordingJitter:
    def __init__(self):
        self.events, self.n = [], 0

    def take(self):
        self.n += 1
        self.events.append(("take", self.n))
        return self.n

    def give(self, block):
        self.events.append(("give", block))


def test_each_timed_block_runs_between_taking_a_spacer_and_giving_it_back():
    jitter, calls = RecordingJitter(), []
    t = interleave.Timer(lambda: calls.append(len(jitter.events)), clock=lambda: 0.0,
                         sync=lambda: None, jitter=jitter)
    t.prime = 1
    t.time_block(2)
    t.time_block(1)
    assert jitter.events == [("take", 1), ("give", 1), ("take", 2), ("give", 2)]
    assert calls == [1, 1, 1, 3, 3]  # every call (primes too) while the spacer is held


def test_a_spacer_is_given_back_when_the_op_fails():
    jitter = RecordingJitter()

    def boom():
        raise RuntimeError("op broke")
    t = interleave.Timer(boom, clock=lambda: 0.0, sync=lambda: None, jitter=jitter)
    with pytest.raises(RuntimeError):
        t.time_block(1)
    assert jitter.events == [("take", 1), ("give", 1)]


def test_the_heap_jitter_takes_real_blocks_of_whole_16_byte_units_within_its_limit():
    assert HeapJitter.create(0) is None
    j = HeapJitter.create(4096)
    if j is None:
        pytest.skip("no C library to take blocks from")
    sizes = [j.size() for _ in range(200)]
    assert min(sizes) >= 16 and max(sizes) <= 4096 and len(set(sizes)) > 50
    assert all(n % 16 == 0 for n in sizes)
    blocks = [j.take() for _ in range(20)]
    assert all(blocks) and len(set(blocks)) == 20  # held at once: twenty distinct blocks
    for b in blocks:
        j.give(b)


def test_the_setting_is_a_whole_number_of_bytes():
    assert protocol.settings({"placement_jitter": 4096})["placement_jitter"] == 4096
    assert protocol.settings()["placement_jitter"] == 0
    for bad in (-1, 1.5, True, "4k"):
        with pytest.raises(ValueError, match="placement_jitter"):
            protocol.settings({"placement_jitter": bad})
