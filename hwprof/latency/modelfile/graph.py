"""The neutral form of a network read from a model file: functions, tensor shapes, constants."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass
class Node:
    """One function of the network (nnabla's function type and arguments)."""

    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelGraph:
    """Functions in execution order, the shape of every tensor, and parameter values.

    ``params`` names the parameters (weights and constants); ``value(name)``
    gives a parameter's array (loaded on demand).
    """

    name: str
    source: str
    nodes: list[Node]
    shapes: dict[str, tuple[int, ...]]
    params: set[str]
    inputs: list[str]
    outputs: list[str]
    value: Callable[[str], "np.ndarray | None"] = lambda name: None

    def shape(self, var: str) -> tuple[int, ...]:
        return self.shapes[var]

    def is_param(self, var: str) -> bool:
        return var in self.params

    def scalar(self, var: str) -> float | None:
        """The value of a constant whose elements are all equal, else None."""
        if var not in self.params:
            return None
        v = self.value(var)
        if v is None or v.size == 0:
            return None
        flat = v.reshape(-1)
        first = float(flat[0])
        return first if bool(np.all(flat == flat[0])) else None
