"""A fake backend for build tests: no agent process, scripted answers and link drops.

Each op's samples are made up from its signature: the op costs ``base`` ms
when the reference is at 1.0 ms and follows the reference with elasticity
``e``; the fake machine alternates between a fast (reference 0.8 ms) and a
slow (1.2 ms) state, so an op's latency at reference level L is exactly
``base * L ** e`` where L is one of the states (between them, too few samples are near L
and they are carried there as ratios: agent v8). ``process_offsets`` moves each agent
process's states by a factor (a machine whose states drift between passes), and
``op_elasticity`` makes every op follow the reference alike.
"""

from __future__ import annotations

import hashlib

from hwprof.latency.backends.base import Backend
from hwprof.latency.backends.session import AgentLost

STATES = (0.8, 1.2)


def op_truth(signature: str) -> tuple[float, float]:
    """(base ms at reference 1.0, elasticity) of a signature, deterministic."""
    h = int(hashlib.sha256(signature.encode()).hexdigest()[:8], 16)
    return 0.05 + (h % 1000) / 200.0, (h >> 10) % 4 / 2.0  # e in 0, 0.5, 1, 1.5


def latency_at(signature: str, level_ms: float) -> float:
    base, e = op_truth(signature)
    return base * level_ms ** e


class FakeTransport:
    def __init__(self):
        self.killed = False

    def kill(self):
        self.killed = True


class FakeSession:
    def __init__(self, backend: FakeBackend):
        self.backend = backend
        self.index = backend.opened - 1  # which agent process of the backend this is
        self.t = FakeTransport()
        self.hello = {"fingerprint_id": "fakefp000001", "fingerprint": {"cpu_model": "fake cpu"},
                      "environment": {"runtime": "nnabla", "runtime_version": "0"},
                      "device": "cpu", "agent_version": "2", "protocol": {},
                      "reference_plan": {"kind": "fake"}}

    def measure_group(self, group_id, ops, *, level_ms=None, seed=0, on_progress=None,
                      untimed=()):
        b = self.backend
        b.built.append([i for i, _ in ops])
        b.groups.append([i for i, _ in ops if i not in untimed])
        for i, _ in ops:
            if b.kill_in_warmup.get(i, 0) > 0:
                b.kill_in_warmup[i] -= 1
                raise AgentLost(f"fake: the agent died preparing {i}")
            if on_progress:
                on_progress({"type": "progress", "id": group_id, "phase": "warmup", "op": i})
        if any(i in b.kill_in_rounds for i in b.groups[-1]) or b.drops_in_rounds > 0:
            b.drops_in_rounds = max(0, b.drops_in_rounds - 1)
            raise AgentLost("fake: the link dropped during the rounds")
        results, timeline = [], []
        for i in b.groups[-1]:
            base, e = op_truth(i)
            e = e if b.op_elasticity is None else b.op_elasticity
            jitter = b.process_jitter.get(i)
            base *= jitter[self.index % len(jitter)] if jitter else 1.0
            offs = b.process_offsets
            off = offs[self.index % len(offs)] if offs else 1.0
            refs = [STATES[k % 2] * off for k in range(b.samples)]
            results.append({"type": "result", "id": i, "status": "ok", "error": None,
                            "samples_ms": [base * r ** e for r in refs], "refs_ms": refs,
                            "median_ms": base, "n_samples": b.samples, "block_size": 1,
                            "sampled_s": 0.01, "started_at": 1.7e9})
            timeline += [(0.01 * k, r) for k, r in enumerate(refs)]
        if on_progress:
            on_progress({"type": "progress", "id": group_id, "phase": "rounds", "round": 1,
                         "active": 0})
        return {"type": "group_result", "id": group_id, "results": results,
                "timeline": timeline}

    def close(self):
        self.backend.closed += 1


class FakeBackend(Backend):
    scheme = "fake"

    def __init__(self, samples=20):  # 10 per state: enough near a level at either state
        super().__init__("cpu")
        self.samples = samples
        self.groups: list[list[str]] = []  # the ops each group timed
        self.built: list[list[str]] = []  # ... and those it built, timed or not, in order
        self.kill_in_warmup: dict[str, int] = {}
        self.kill_in_rounds: set[str] = set()
        self.drops_in_rounds = 0
        self.opened = self.closed = 0
        self.configs: list[dict] = []  # what each open() was given (seed, protocol)
        # signature -> its cost factor in the backend's 1st, 2nd... agent process (cycled): a
        # per-process effect, as a fresh process's buffers land elsewhere
        self.process_jitter: dict[str, list[float]] = {}
        self.process_offsets: list[float] | None = None  # the states' factor per process (cycled)
        self.op_elasticity: float | None = None  # every op's elasticity, instead of its own

    @property
    def label(self) -> str:
        return "fake"

    def open(self, config: dict) -> FakeSession:
        self.opened += 1
        self.configs.append(config)
        return FakeSession(self)
