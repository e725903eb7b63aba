"""The peer engines, each seen through the few calls the workloads need.

Every workload's model code is written once with Python operators; an
:class:`Engine` adapts one graph-building engine to it (how to make a leaf,
run backward, read and write numbers).  The ``floor`` is no engine: each
workload writes its arithmetic again on plain floats with a hand-written
backward, the lower bound for any scalar engine in pure Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

FLOOR = "floor"
# every engine the command line knows, in the order of the report's rows; the
# compiled ones take part in mlp_step and microgpt_step only (see benchmarks.workloads)
ENGINE_ORDER = ("microgrannd", "compiled", "compiled-tape", "closure-free", "micrograd", "torch", FLOOR)


class Engine:
    """A graph-building engine seen through the few calls the workloads need."""

    name = "?"

    def leaf(self, x: float) -> Any:
        """A node that receives a gradient (a parameter)."""
        raise NotImplementedError

    def input(self, x: float) -> Any:
        """A data point's coordinate (micrograd's demo wraps them as Values too)."""
        return self.leaf(x)

    def backward(self, root: Any) -> None:
        """Run backward from ``root`` (seed 1)."""
        root.backward()

    def value(self, v: Any) -> float:
        """The float held by ``v``."""
        return float(v.data)

    def grad(self, v: Any) -> float:
        """The gradient accumulated on ``v``."""
        return float(v.grad)

    def set_value(self, p: Any, x: float) -> None:
        """Overwrite a parameter's value (used to reset the model, untimed)."""
        p.data = x

    def zero_grad(self, params: Sequence[Any]) -> None:
        """Clear the parameters' gradients."""
        for p in params:
            p.grad = 0.0

    def sgd(self, params: Sequence[Any], lr: float) -> None:
        """``p -= lr * p.grad`` for every parameter."""
        for p in params:
            p.data -= lr * p.grad


class ValueEngine(Engine):
    """An engine whose nodes are a ``Value`` class built from a float."""

    Value: Any

    def leaf(self, x: float) -> Any:
        """A leaf Value."""
        return self.Value(x)


class MicrogranndEngine(ValueEngine):
    """microgrannd.Value."""

    name = "microgrannd"

    def __init__(self) -> None:
        from microgrannd import Value

        self.Value = Value


class MicrogradEngine(ValueEngine):
    """micrograd 0.1.0's Value."""

    name = "micrograd"

    def __init__(self) -> None:
        from micrograd.engine import Value

        self.Value = Value

    def zero_grad(self, params: Sequence[Any]) -> None:
        """micrograd's Module.zero_grad."""
        for p in params:
            p.grad = 0


class ClosureFreeEngine(ValueEngine):
    """:mod:`benchmarks.closure_free`'s Value: microgpt-style nodes holding their local derivatives."""

    name = "closure-free"

    def __init__(self) -> None:
        from benchmarks.closure_free import Value

        self.Value = Value


class TorchEngine(Engine):
    """PyTorch 0-dim float64 tensors (single-threaded: the ops are scalars)."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        torch.set_num_threads(1)

    def leaf(self, x: float) -> Any:
        """A leaf tensor with requires_grad."""
        return self.torch.tensor(x, dtype=self.torch.float64, requires_grad=True)

    def input(self, x: float) -> Any:
        """A constant tensor (PyTorch users do not track inputs)."""
        return self.torch.tensor(x, dtype=self.torch.float64)

    def value(self, v: Any) -> float:
        """``v.item()``."""
        return float(v.item())

    def grad(self, v: Any) -> float:
        """``v.grad.item()`` (0.0 if no gradient reached ``v``)."""
        return 0.0 if v.grad is None else float(v.grad.item())

    def set_value(self, p: Any, x: float) -> None:
        """Overwrite in place, outside the graph."""
        with self.torch.no_grad():
            p.fill_(x)

    def zero_grad(self, params: Sequence[Any]) -> None:
        """``p.grad = None`` (what ``optimizer.zero_grad()`` does by default)."""
        for p in params:
            p.grad = None

    def sgd(self, params: Sequence[Any], lr: float) -> None:
        """In-place update without recording."""
        with self.torch.no_grad():
            for p in params:
                p.sub_(lr * p.grad)


ENGINE_FACTORIES: dict[str, Callable[[], Engine]] = {
    "microgrannd": MicrogranndEngine,
    "closure-free": ClosureFreeEngine,
    "micrograd": MicrogradEngine,
    "torch": TorchEngine,
}
GRAPH_ENGINES = tuple(ENGINE_FACTORIES)


def available_engines(wanted: Sequence[str]) -> tuple[dict[str, Engine], dict[str, str]]:
    """Instantiate the wanted graph engines; return (engines, {name: why missing}).

    Names that are not graph engines (the floor, the compiled engines) are left out of both.
    """
    engines: dict[str, Engine] = {}
    missing: dict[str, str] = {}
    for name in wanted:
        if name not in ENGINE_FACTORIES:
            continue
        try:
            engines[name] = ENGINE_FACTORIES[name]()
        except ImportError as e:
            missing[name] = f"not importable ({e})"
    return engines, missing


def relu_f(x: float) -> float:
    """ReLU on a float, with the engines' convention (0 at 0): the floor's relu."""
    return x if x > 0 else 0.0
