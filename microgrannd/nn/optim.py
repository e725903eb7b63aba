"""Optimizers: :class:`SGD` (with momentum) and :class:`Adam`.

Each holds a list of parameters (Values), reads their ``grad`` in
:meth:`~Optimizer.step` and updates their ``data`` in place.  ``lr`` is a
plain attribute, so a schedule is ``opt.lr = ...`` between steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from microgrannd.engine import Value

__all__ = ["SGD", "Adam", "Optimizer"]


class Optimizer:
    """Base class: the parameter list, :meth:`zero_grad` and :meth:`step`."""

    def __init__(self, params: Iterable[Value], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if lr < 0:
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.lr = float(lr)

    def grads(self) -> list[float]:
        """Every parameter's gradient as a number.

        After ``backward(create_graph=True)`` a ``grad`` is a Value: its
        number is used (a parameter's ``data`` stays a float).
        """
        return [g if type(g) is float else (g.data if isinstance(g, Value) else float(g))
                for g in (p.grad for p in self.params)]

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to 0.0."""
        for p in self.params:
            p.grad = 0.0

    def step(self) -> None:
        """Update every parameter from its ``grad``."""
        raise NotImplementedError


class SGD(Optimizer):
    """Gradient descent, with optional momentum (PyTorch's form).

    ``v = momentum * v + grad``; ``data -= lr * v``.  With ``momentum=0`` this
    is ``data -= lr * grad``.
    """

    def __init__(self, params: Iterable[Value], lr: float, momentum: float = 0.0) -> None:
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = float(momentum)
        self.velocity = [0.0] * len(self.params)

    def step(self) -> None:
        """One update: ``data -= lr * grad`` (through the velocity with momentum)."""
        grads = self.grads()
        if self.momentum == 0.0:
            for p, g in zip(self.params, grads, strict=True):
                p.data -= self.lr * g
            return
        mu, v = self.momentum, self.velocity
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            v[i] = mu * v[i] + g
            p.data -= self.lr * v[i]


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, and
    ``data -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``
    and ``v_hat = v / (1 - b2^t)``.
    """

    def __init__(
        self,
        params: Iterable[Value],
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)
        self.t = 0
        self.m = [0.0] * len(self.params)
        self.v = [0.0] * len(self.params)

    def step(self) -> None:
        """One Adam update of every parameter."""
        b1, b2 = self.betas
        self.t += 1
        c1 = 1.0 - b1**self.t
        c2 = 1.0 - b2**self.t
        m, v = self.m, self.v
        for i, (p, g) in enumerate(zip(self.params, self.grads(), strict=True)):
            m[i] = b1 * m[i] + (1.0 - b1) * g
            v[i] = b2 * v[i] + (1.0 - b2) * g * g
            p.data -= self.lr * (m[i] / c1) / (math.sqrt(v[i] / c2) + self.eps)
