"""Moving where an op's per-call buffers land, sample by sample (protocol ``placement_jitter``).

An op's latency on the development VM can sit in one of two levels according to
where the C heap puts its buffers, and a chain frees and takes its intermediate
buffers again on every call, from the same free space each time: every instance
of the op in one process lands alike, and a pass is one placement
(docs/MEASUREMENTS.md, issue 12). With a jitter, a block of random size (a multiple of 16 bytes up to
the setting) is taken from the C heap right before each timed op block and given
back right after, so the block's buffers start that much further on, and one
pass's samples average many placements.

Standard library only (ctypes); where no C library is found it does nothing.
"""

import ctypes
import ctypes.util
import random


class HeapJitter:
    """Takes a block of random size from the C heap; :meth:`give` returns it."""

    def __init__(self, libc, max_bytes, seed=0):
        self._malloc, self._free = libc.malloc, libc.free
        self._malloc.restype, self._malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        self._free.restype, self._free.argtypes = None, [ctypes.c_void_p]
        self.units = max(1, int(max_bytes) // 16)
        self.rng = random.Random("hwprof-placement:%s" % seed)

    @classmethod
    def create(cls, max_bytes, seed=0):
        """A jitter of up to ``max_bytes``, or None (0, or no C library to take blocks from)."""
        if not max_bytes:
            return None
        name = ctypes.util.find_library("c")
        if name is None:
            return None
        try:
            return cls(ctypes.CDLL(name), max_bytes, seed)
        except (OSError, AttributeError):
            return None

    def size(self):
        """The next block's size: a whole number of 16-byte units, at most the setting."""
        return 16 * self.rng.randint(1, self.units)

    def take(self):
        return self._malloc(self.size())

    def give(self, block):
        if block:
            self._free(block)
