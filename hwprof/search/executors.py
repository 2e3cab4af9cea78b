"""Executors: where a multi-trial strategy's evaluations run.

``executor.map(fn, items) -> [fn(item) for item in items]``, in order
(``imap`` yields them one by one as they are ready, for progress bars), over:

- ``local`` (default): worker processes on this machine (``multiprocessing``
  spawn, so no worker inherits the parent's nnabla graphs); ``workers=1``
  runs in the calling process;
- ``ray``: a Ray instance (``ray.init()``; with ``RAY_ADDRESS`` set, the
  cluster it names), or ``ray://host:port`` (Ray Client). Ray is an optional
  extra: ``pip install 'hwprof[ray]'``. A cluster's nodes need hwprof
  installed; nothing else in hwprof changes.

``fn`` must be picklable (an :class:`~hwprof.search.evaluators.Evaluator` is)
and is shipped once per ``map`` call and worker, not once per item. Results
are the same whichever executor runs them, because evaluations are seeded from
the architecture, not from the order or the worker.

Use an executor as a context manager (or call ``close``) to stop its workers.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterable, Iterator

from hwprof.errors import UserError

RAY_HINT = "pip install 'hwprof[ray]'"


class Executor:
    name = ""

    def imap(self, fn: Callable, items: Iterable) -> Iterator:
        """``fn(item)`` for each item, in order; all of them are started at once."""
        raise NotImplementedError

    def map(self, fn: Callable, items: Iterable) -> list:
        return list(self.imap(fn, items))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        return self.name


# --------------------------------------------------------------------------- #
# local worker processes

_WORKER_FN: Callable | None = None


def _install(fn: Callable) -> None:
    global _WORKER_FN
    _WORKER_FN = fn


def _call_installed(item):
    return _WORKER_FN(item)


def _quiet_worker(fn: Callable) -> None:
    # one thread per worker process: the workers share the cores between them
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import logging
    logging.getLogger("nnabla").setLevel(logging.WARNING)
    _install(fn)


class LocalExecutor(Executor):
    """Worker processes on this machine (``workers`` of them; default: one per CPU)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        n = (os.cpu_count() or 1) if workers is None else int(workers)
        if n < 1:
            raise UserError(f"--workers must be >= 1, got {workers}")
        self.workers = n
        self._pool = None
        self._fn = None

    def imap(self, fn: Callable, items: Iterable) -> Iterator:
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            return (fn(it) for it in items)
        return self._pool_for(fn).map(_call_installed, items)

    def _pool_for(self, fn: Callable):
        """The worker pool holding ``fn``: kept across calls with the same ``fn`` (it travels,
        data included, once per worker through the initializer), replaced for another one."""
        if self._pool is not None and self._fn is fn:
            return self._pool
        self.close()
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                         initializer=_quiet_worker, initargs=(fn,))
        self._fn = fn
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._fn = None, None

    def describe(self) -> str:
        return f"local ({self.workers} worker process{'es' if self.workers != 1 else ''})"


# --------------------------------------------------------------------------- #
# Ray


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray: {RAY_HINT}") from None
    return ray


def _ray_call(fn, item):
    return fn(item)


class RayExecutor(Executor):
    """Trials as Ray tasks. ``address``: None (``ray.init()``'s default) or ``ray://host:port``.

    An already initialised Ray (a test's, a notebook's) is used as it is and
    left running; one this executor started is shut down by ``close``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus_per_trial: float = 1.0):
        self.address, self.num_cpus = address, float(num_cpus_per_trial)
        self._started = False
        self._remote = None

    def _ray(self):
        ray = import_ray()
        if not ray.is_initialized():
            # a Ray started here: no dashboard, workers' output stays in Ray's logs
            kwargs = {} if self.address else {"include_dashboard": False, "log_to_driver": False}
            self._connect(ray, kwargs)
            self._started = True
        if self._remote is None:
            self._remote = ray.remote(num_cpus=self.num_cpus)(_ray_call)
        return ray

    def _connect(self, ray, kwargs: dict, tries: int = 3, pause_s: float = 3.0) -> None:
        """``ray.init``; a Ray Client server that is still starting refuses the first tries."""
        for attempt in range(tries):
            try:
                ray.init(address=self.address, **kwargs)
                return
            except (ConnectionError, ValueError, RuntimeError) as e:
                if attempt + 1 < tries and self.address:
                    time.sleep(pause_s)
                    continue
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise UserError(f"cannot connect to Ray at {self.address or 'the default address'}"
                                f": {first}") from None

    def imap(self, fn: Callable, items: Iterable) -> Iterator:
        items = list(items)
        if not items:
            return iter(())
        ray = self._ray()
        ref = ray.put(fn)   # shipped once; every task gets the same object
        futures = [self._remote.remote(ref, it) for it in items]
        return (ray.get(f) for f in futures)

    def close(self) -> None:
        if self._started:
            import ray
            ray.shutdown()
            self._started = False

    def describe(self) -> str:
        return f"ray ({self.address or 'local or RAY_ADDRESS'})"


EXECUTORS = ("local", "ray", "ray://HOST:PORT")


def make_executor(spec: str | None = None, workers: int | None = None) -> Executor:
    """``local`` (default), ``ray`` or ``ray://host:port``."""
    spec = (spec or "local").strip()
    if spec == "local":
        return LocalExecutor(workers)
    if spec == "ray":
        return RayExecutor(None)
    if spec.startswith("ray://") and len(spec) > len("ray://"):
        return RayExecutor(spec)
    raise UserError(f"unknown executor {spec!r}; choose one of {', '.join(EXECUTORS)}")

