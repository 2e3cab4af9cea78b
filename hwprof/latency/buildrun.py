"""Running a build's groups on its backends: one worker thread per backend.

Workers take groups from one shared queue. A backend whose link drops is
reopened with exponential backoff and the group goes back to the queue; one
that never comes back ends its worker. The loss is blamed where it happened:
while the agent was building and warming up the group's ops, on the op it
was preparing (an op that loses the agent ``OP_LOSS_LIMIT`` times becomes an
error row); while it sampled the group in rounds, on the group, which is split
in halves once it has lost the agent that often, until the op that kills the
agent stands alone.

Each pass runs in a fresh agent process: when a backend's next group belongs
to another pass than its last one, the session is closed and the backend
opened again. On the development VM an op's latency relative to the
reference moves by a few per cent from one process to the next (the larger
MBConvs of mbv2-cifar, all in the same direction within a process: 2.6-5 %
between two processes, while three instances of each op with buffers of their
own in one process agreed within 1-3 %; for mbv2-mini's 0.1-0.4 ms blocks one
instance of three often sat 4-6 % off the others: ``scripts/probe_instances.py``),
so the median over passes in separate processes, each op built anew, is the cure
for both, not more samples in one.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Sequence

from hwprof.errors import DeviceError
from hwprof.latency.backends.base import Backend
from hwprof.latency.backends.session import AgentLost, AgentSession
from hwprof.latency.buildplan import Group

OP_LOSS_LIMIT = 3  # an op (or a group) that loses the agent this many times is cut down


def reopen(backend: Backend, config: dict, err: Exception, tries: int, backoff: float,
           log: Callable[[str], None], stop: threading.Event) -> AgentSession | None:
    """Open ``backend`` again after ``err``, with exponential backoff; None when it gives up."""
    delay = backoff
    for attempt in range(1, tries + 1):
        if stop.is_set():
            return None
        log(f"{backend.label}: {err}; reconnecting in {delay:.0f} s "
            f"(attempt {attempt}/{tries})")
        if stop.wait(delay):
            return None
        try:
            return backend.open(config)
        except DeviceError as e:  # AgentLost is a DeviceError too
            err = e
            delay = min(delay * 2, 30.0)
    log(f"{backend.label}: gave up after {tries} attempts: {err}")
    return None


class GroupRunner:
    """Feeds groups to sessions; calls ``on_answer`` / ``on_op_error`` as results arrive."""

    def __init__(self, backends: Sequence[Backend], sessions: list[AgentSession | None],
                 config: dict, *, level_of: Callable[[dict], float | None],
                 on_answer: Callable[[Group, dict, AgentSession, Backend], None],
                 on_op_error: Callable[[object, str, AgentSession, Backend], None],
                 on_progress: Callable[[int], None], log: Callable[[str], None],
                 skip: Callable[[str], bool] = lambda sig: False,
                 max_reconnects: int = 5, backoff: float = 1.0,
                 pass_of: dict[int, int] | None = None):
        self.backends, self.sessions, self.config = backends, sessions, config
        self.level_of, self.on_answer, self.on_op_error = level_of, on_answer, on_op_error
        self.on_progress, self.log, self.skip = on_progress, log, skip
        self.max_reconnects, self.backoff = max_reconnects, backoff
        self.work: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.op_losses: dict[str, int] = {}
        self.failures: list[str] = []
        self.crashes: list[BaseException] = []
        self.reconnects = 0
        # backend -> pass of its last group (shared by the runs of one build, so a later run's
        # new pass also starts a fresh process)
        self.pass_of: dict[int, int] = {} if pass_of is None else pass_of

    def run(self, groups: Sequence[Group]) -> int:
        """Measure every group; returns how many ops were left unmeasured (0 when all done)."""
        for g in groups:
            self.work.put(g)
        threads = [threading.Thread(target=self._worker, args=(i,), daemon=True)
                   for i in range(len(self.backends))]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except BaseException:
            self.stop.set()
            for s in self.sessions:
                if s is not None:
                    s.t.kill()
            raise
        if self.crashes:
            raise self.crashes[0]
        left = 0
        while not self.work.empty():
            left += len(self.work.get_nowait().specs)
        return left

    def _worker(self, i: int) -> None:
        try:
            while not self.stop.is_set():
                try:
                    group = self.work.get_nowait()
                except queue.Empty:
                    return
                if not self._measure(i, group):
                    return
        except BaseException as e:  # a bug, not a device fault: re-raised by run()
            self.crashes.append(e)
            self.stop.set()

    def _measure(self, i: int, group: Group) -> bool:
        """Measure one group on backend ``i``; False when that backend is gone for good."""
        backend, sess = self.backends[i], self.sessions[i]
        skipped = [s for s in group.specs if self.skip(s.signature)]
        if skipped:  # e.g. failed in an earlier pass: it stays an error row
            self.on_progress(len(skipped))
            group.specs = [s for s in group.specs if not self.skip(s.signature)]
            if group.context is not None:
                group.context = [s for s in group.context if not self.skip(s.signature)]
            if not group.specs:
                return True
        group.warmed = set()
        done = [0]
        sess = self._fresh_for_pass(i, group.pass_index)

        def progress(msg: dict) -> None:
            if msg.get("phase") == "warmup":
                group.warmed.add(msg.get("op"))
            elif msg.get("phase") == "rounds":
                finished = len(group.specs) - int(msg.get("active", 0))
                self.on_progress(finished - done[0])
                done[0] = finished
        try:
            if sess is None:
                raise AgentLost(f"{backend.label}: not connected")
            built = group.build_list()
            untimed = {s.signature for s in built} - {s.signature for s in group.specs}
            answer = sess.measure_group(group.id, [(s.signature, s.plan()) for s in built],
                                        level_ms=self.level_of(sess.hello),
                                        seed=group.pass_index, on_progress=progress,
                                        untimed=untimed)
        except AgentLost as e:
            self.on_progress(-done[0])
            self._blame(group, e, sess, backend)
            sess = reopen(backend, self.config, e, self.max_reconnects, self.backoff, self.log,
                          self.stop)
            self.sessions[i] = sess
            with self.lock:
                self.reconnects += 1
            if sess is None:
                self.failures.append(f"{backend.label}: {e}")
                return False
            return True
        self.on_answer(group, answer, sess, backend)
        self.on_progress(len(group.specs) - done[0])
        return True

    def _fresh_for_pass(self, i: int, pass_index: int) -> AgentSession | None:
        """Backend ``i``'s session for a group of ``pass_index``: a new agent process when the
        pass changed (a failed open leaves None: the group then takes the reconnect path)."""
        sess, last = self.sessions[i], self.pass_of.get(i)
        self.pass_of[i] = pass_index
        if sess is None or last is None or last == pass_index:
            return sess
        backend = self.backends[i]
        sess.close()
        try:
            sess = backend.open(self.config)
        except DeviceError as e:
            self.log(f"{backend.label}: a fresh agent for pass {pass_index + 1} failed: {e}")
            sess = None
        self.sessions[i] = sess
        return sess

    def _blame(self, group: Group, err: Exception, sess: AgentSession | None,
               backend: Backend) -> None:
        """Requeue what is left of ``group`` after the agent was lost while measuring it."""
        specs = list(group.specs)
        if sess is None:  # never reached an agent: nothing to blame
            self.work.put(group)
            return
        if group.context is not None:  # tried again with its timed ops alone, which take the blame
            self.work.put(Group(group.id, specs, group.pass_index, group.losses))
            return
        if len(group.warmed) < len(specs):  # lost while the agent built and warmed up ops
            culprit = next(s for s in specs if s.signature not in group.warmed)
            with self.lock:
                n = self.op_losses[culprit.signature] = self.op_losses.get(culprit.signature, 0) + 1
            if n >= OP_LOSS_LIMIT and sess is not None:
                self.on_op_error(culprit, f"the agent was lost {n} times while measuring this "
                                          f"op; last: {err}", sess, backend)
                specs.remove(culprit)
            if specs:
                self.work.put(Group(group.id, specs, group.pass_index, group.losses))
            return
        group.losses += 1
        if group.losses >= OP_LOSS_LIMIT and len(specs) > 1:
            half = len(specs) // 2
            for k, part in enumerate((specs[:half], specs[half:])):
                self.work.put(Group(f"{group.id}.{k}", part, group.pass_index))
        elif group.losses >= OP_LOSS_LIMIT and sess is not None:
            self.on_op_error(specs[0], f"the agent was lost {group.losses} times while "
                                       f"measuring this op; last: {err}", sess, backend)
        else:
            self.work.put(Group(group.id, specs, group.pass_index, group.losses))
