"""Training helpers shared by the learners: batches, numpy Adam, child-net training and evaluation."""

from __future__ import annotations

import time
from typing import Callable, Iterator, Sequence

import nnabla as nn
import nnabla.functions as F
import nnabla.solvers as S
import numpy as np

from hwprof.latency.spaces import Space


def batches(n: int, size: int, rng: np.random.RandomState, drop_last: bool = True) -> Iterator[np.ndarray]:
    idx = rng.permutation(n)
    stop = n - n % size if drop_last and n >= size else n
    for i in range(0, stop, size):
        yield idx[i:i + size]


class NumpyAdam:
    """Adam over a list of numpy arrays (the architecture parameters)."""

    def __init__(self, params: Sequence[np.ndarray], lr: float = 0.05, b1: float = 0.5,
                 b2: float = 0.999, eps: float = 1e-8):
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, b1, b2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: Sequence[np.ndarray]) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def cross_entropy(y, t):
    return F.mean(F.softmax_cross_entropy(y, t))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels.reshape(-1)).mean())


def evaluate(build: Callable, x: np.ndarray, y: np.ndarray, batch: int = 200) -> float:
    """Accuracy of ``build(x_var) -> logits`` (inference graph) on (x, y)."""
    if len(y) == 0:
        return float("nan")
    correct = 0
    graphs: dict[int, tuple] = {}
    for i in range(0, len(y), batch):
        xb = x[i:i + batch]
        n = len(xb)
        if n not in graphs:
            xv = nn.Variable((n,) + x.shape[1:])
            graphs[n] = (xv, build(xv))
        xv, out = graphs[n]
        xv.d = xb
        out.forward(clear_buffer=True)
        correct += int((out.d.argmax(axis=1) == y[i:i + batch]).sum())
    return correct / len(y)


def train_child(net, choices: Sequence[str], data, epochs: int, rng: np.random.RandomState,
                batch: int = 64, lr: float = 2e-3, log: Callable[[str], None] | None = None) -> dict:
    """Train the child network ``choices`` of ``net`` (a SuperNet in its own scope) from scratch.

    Returns {"test_accuracy", "val_accuracy", "seconds", "epochs"}.
    """
    t0 = time.perf_counter()
    fit_child(net, choices, data, epochs, rng, batch=batch, lr=lr, log=log)
    infer = lambda v: net.child(v, choices, train=False)  # noqa: E731
    return {"test_accuracy": evaluate(infer, data.x_test, data.y_test),
            "val_accuracy": evaluate(infer, data.x_val, data.y_val),
            "seconds": time.perf_counter() - t0, "epochs": epochs}


def fit_child(net, choices: Sequence[str], data, epochs: int, rng: np.random.RandomState,
              batch: int = 64, lr: float = 2e-3, log: Callable[[str], None] | None = None) -> None:
    """The training loop of :func:`train_child` (Adam on every weight of the child), no scoring."""
    shape = data.x_train.shape[1:]
    bs = min(batch, len(data.y_train))
    x = nn.Variable((bs,) + shape)
    t = nn.Variable((bs, 1))
    logits = net.child(x, choices, train=True)
    logits.persistent = True
    loss = cross_entropy(logits, t)
    solver = S.Adam(alpha=lr)
    solver.set_parameters(net.weights())
    for ep in range(epochs):
        losses, accs = [], []
        for b in batches(len(data.y_train), bs, rng):
            x.d, t.d = data.x_train[b], data.y_train[b, None]
            loss.forward(clear_no_need_grad=True)
            solver.zero_grad()
            loss.backward(clear_buffer=True)
            solver.update()
            losses.append(float(loss.d))
            accs.append(accuracy(logits.d, data.y_train[b]))
        if log:
            log(f"retrain epoch {ep + 1}/{epochs}: loss {np.mean(losses):.3f}  "
                f"train acc {np.mean(accs):.3f}")


def input_shape(space: Space, batch: int) -> tuple[int, ...]:
    return (batch,) + tuple(space.input[1:])
