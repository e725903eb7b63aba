"""A minimal closure-free scalar autograd engine: the peer microgrannd is measured against.

In the style of microgpt's engine: each node stores its inputs (``_children``)
and the local derivative of its value with respect to each of them
(``_local_grads``), both computed when the node is made, so no node holds a
closure.  ``backward`` sorts the graph topologically (iteratively, so deep
graphs do not hit the recursion limit) and applies the chain rule
``child.grad += local * node.grad`` once per edge.

The primitives are ``+ * ** log exp relu`` (``**`` with a number exponent);
negation, subtraction and division are made of them.  There are no checks:
``log`` of a non-positive number raises Python's own error.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Value"]


class Value:
    """A scalar node: ``data``, ``grad``, and the inputs with their local derivatives."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data: float, children: tuple[Value, ...] = (), local_grads: tuple[float, ...] = ()) -> None:
        self.data = data
        self.grad = 0.0
        self._children = children
        self._local_grads = local_grads

    def __repr__(self) -> str:
        return f"Value(data={self.data!r}, grad={self.grad!r})"

    # --- primitives

    def __add__(self, other: Any) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other: Any) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k: float) -> Value:
        return Value(self.data**k, (self,), (k * self.data ** (k - 1),))

    def log(self) -> Value:
        """Natural logarithm."""
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def exp(self) -> Value:
        """``e ** self``."""
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def relu(self) -> Value:
        """``max(self, 0)``, derivative 0 at 0."""
        return Value(max(self.data, 0.0), (self,), (float(self.data > 0),))

    # --- made of the primitives

    def __neg__(self) -> Value:
        return self * -1.0

    def __radd__(self, other: Any) -> Value:
        return self + other

    def __sub__(self, other: Any) -> Value:
        return self + (-other)

    def __rsub__(self, other: Any) -> Value:
        return other + (-self)

    def __rmul__(self, other: Any) -> Value:
        return self * other

    def __truediv__(self, other: Any) -> Value:
        return self * other**-1.0

    def __rtruediv__(self, other: Any) -> Value:
        return other * self**-1.0

    # --- backward

    def backward(self) -> None:
        """Fill in ``grad`` of every node this one depends on (accumulating, as the nodes' grads start at 0)."""
        topo: list[Value] = []
        visited: set[Value] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            v, children_done = stack.pop()
            if children_done:
                topo.append(v)
            elif v not in visited:
                visited.add(v)
                stack.append((v, True))
                for child in v._children:
                    if child not in visited:
                        stack.append((child, False))
        self.grad = 1.0
        for v in reversed(topo):
            g = v.grad
            for child, local in zip(v._children, v._local_grads):  # noqa: B905 (same length by construction)
                child.grad += local * g
