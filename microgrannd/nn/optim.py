"""Optimizers: :class:`SGD` (momentum, Nesterov, weight decay) and :class:`Adam`.

Each holds parameters (Values), reads their ``grad`` in :meth:`~Optimizer.step`
and updates their ``data`` in place.  As in PyTorch, ``params`` is either a
list of Values or a list of *parameter groups*, dicts such as
``{"params": [...], "lr": 0.1}`` whose keys override the optimizer's
arguments for those parameters (``opt.param_groups`` holds them, every
setting filled in).  ``lr`` is a plain attribute, so a schedule is
``opt.lr = ...`` between steps (it sets every group's ``lr``; the groups'
own ``"lr"`` entries can be set one by one too).

The updates are PyTorch's, for ``g`` the gradient: weight decay adds
``weight_decay * data`` to ``g``; SGD's momentum keeps ``v = momentum * v + g``
and steps along ``v``, or along ``g + momentum * v`` with ``nesterov=True``.
Every setting is checked when it is given: a wrong one is a ``ValueError`` or
``TypeError`` that names it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from microgrannd.engine import Value

__all__ = ["SGD", "Adam", "Optimizer"]


def _finite(x: Any, what: str, *, positive: bool = False) -> float:
    """``x`` as a finite float >= 0 (> 0 if ``positive``), or an error naming ``what``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{what} must be a number, not {type(x).__name__}")
    value = float(x)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{what} must be a finite number {'> 0' if positive else '>= 0'}, not {x}")
    return value


def _fraction(x: Any, what: str) -> float:
    """``x`` as a float in [0, 1), or an error naming ``what``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{what} must be a number in [0, 1), not {type(x).__name__}")
    value = float(x)
    if not 0.0 <= value < 1.0:  # NaN fails this too
        raise ValueError(f"{what} must be in [0, 1), not {x}")
    return value


class Optimizer:
    """Base class: parameter groups, :meth:`zero_grad` and :meth:`step`.

    ``params`` is an iterable of Values or of dicts (parameter groups, each
    with a ``"params"`` entry); ``lr`` and ``defaults`` are the settings a
    group does not give.  Subclasses check a group's settings in :meth:`check_group`.

    Attributes:
        param_groups: the groups, as dicts with every setting filled in.
        params: every parameter, group after group (the order of the state lists).
    """

    def __init__(
        self, params: Iterable[Value] | Iterable[Mapping[str, Any]], lr: float | None = None, **defaults: Any
    ) -> None:
        if isinstance(params, Value | Mapping):
            raise TypeError("params must be a list of Values or of parameter groups (dicts), "
                            f"not a single {type(params).__name__}")
        self.defaults: dict[str, Any] = {"lr": lr, **defaults}
        self.param_groups: list[dict[str, Any]] = []
        self.params: list[Value] = []
        items = list(params)
        if not items:
            raise ValueError("optimizer got an empty parameter list")
        if all(isinstance(g, Mapping) for g in items):
            for group in items:
                self.add_param_group(group)  # type: ignore[arg-type]
        elif any(isinstance(g, Mapping) for g in items):
            raise TypeError("params must be all Values or all parameter groups (dicts), not a mixture")
        else:
            self.add_param_group({"params": items})

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a parameter group: ``{"params": [...], ...settings}`` (PyTorch's method)."""
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError("a parameter group must be a dict with a 'params' entry")
        members = group["params"]
        members = [members] if isinstance(members, Value) else list(members)
        for p in members:
            if not isinstance(p, Value):
                raise TypeError(f"params must hold Values, not {type(p).__name__}")
        seen = set(self.params)
        if len(set(members)) != len(members) or any(p in seen for p in members):
            raise ValueError("a parameter appears more than once in params (in one group or in several)")
        filled = {"params": members, **self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        if filled.get("lr") is None:
            raise ValueError("lr: give a learning rate, to the optimizer or in every parameter group")
        self.check_group(filled)
        self.param_groups.append(filled)
        self.params.extend(members)
        self.new_state(len(members))

    def check_group(self, group: dict[str, Any]) -> None:
        """Check a group's settings in place (converting them to floats); ``lr`` is checked here."""
        group["lr"] = _finite(group["lr"], "lr")

    def new_state(self, n: int) -> None:
        """Make room in the per-parameter state for ``n`` new parameters."""

    @property
    def lr(self) -> float:
        """The learning rate of the first group; setting it sets every group's."""
        return float(self.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        value = _finite(value, "lr")
        for group in self.param_groups:
            group["lr"] = value

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
    """Gradient descent with optional momentum, Nesterov momentum and weight decay (PyTorch's forms).

    For each parameter, with ``g`` its gradient: ``g += weight_decay * data``;
    with momentum, ``v = momentum * v + g`` and ``g = v`` (or
    ``g = g + momentum * v`` with ``nesterov=True``); then ``data -= lr * g``.
    With the defaults this is ``data -= lr * grad``.  Each parameter group may
    set ``lr``, ``momentum``, ``weight_decay`` and ``nesterov``.
    """

    def __init__(
        self,
        params: Iterable[Value] | Iterable[Mapping[str, Any]],
        lr: float | None = None,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        self.velocity: list[float] = []
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)

    def check_group(self, group: dict[str, Any]) -> None:
        """Check ``lr``, ``momentum`` (in [0, 1)), ``weight_decay`` (>= 0) and ``nesterov``."""
        super().check_group(group)
        group["momentum"] = _fraction(group["momentum"], "momentum")
        group["weight_decay"] = _finite(group["weight_decay"], "weight_decay")
        if not isinstance(group["nesterov"], bool):
            raise TypeError(f"nesterov must be True or False, not {group['nesterov']!r}")
        if group["nesterov"] and group["momentum"] == 0.0:
            raise ValueError("nesterov=True needs a momentum above 0")

    def new_state(self, n: int) -> None:
        """A velocity of 0.0 for each new parameter."""
        self.velocity.extend([0.0] * n)

    @property
    def momentum(self) -> float:
        """The momentum of the first group."""
        return float(self.param_groups[0]["momentum"])

    def step(self) -> None:
        """One update of every parameter (see the class description)."""
        grads = self.grads()
        v = self.velocity
        k = 0
        for group in self.param_groups:
            lr, mu, wd, nesterov = group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                g = grads[k]
                if wd:
                    g += wd * p.data
                if mu:
                    v[k] = mu * v[k] + g
                    g = g + mu * v[k] if nesterov else v[k]
                p.data -= lr * g
                k += 1


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction, and optional weight decay (PyTorch's form).

    ``g += weight_decay * data``, ``m = b1 m + (1 - b1) g``,
    ``v = b2 v + (1 - b2) g^2``, and
    ``data -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``
    and ``v_hat = v / (1 - b2^t)``, ``t`` counting the parameter's steps.
    ``eps`` must be above 0 (it keeps a zero gradient from dividing 0 by 0).
    Each parameter group may set ``lr``, ``betas``, ``eps`` and ``weight_decay``.
    """

    def __init__(
        self,
        params: Iterable[Value] | Iterable[Mapping[str, Any]],
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.t = 0
        self.steps: list[int] = []
        self.m: list[float] = []
        self.v: list[float] = []
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def check_group(self, group: dict[str, Any]) -> None:
        """Check ``lr``, ``betas`` (each in [0, 1)), ``eps`` (> 0) and ``weight_decay`` (>= 0)."""
        super().check_group(group)
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise TypeError(f"betas must be a pair of numbers in [0, 1), not {betas!r}")
        group["betas"] = (_fraction(betas[0], "betas[0]"), _fraction(betas[1], "betas[1]"))
        group["eps"] = _finite(group["eps"], "eps", positive=True)
        group["weight_decay"] = _finite(group["weight_decay"], "weight_decay")

    def new_state(self, n: int) -> None:
        """Zero moments and no steps yet for each new parameter."""
        self.steps.extend([0] * n)
        self.m.extend([0.0] * n)
        self.v.extend([0.0] * n)

    @property
    def betas(self) -> tuple[float, float]:
        """The betas of the first group."""
        b1, b2 = self.param_groups[0]["betas"]
        return float(b1), float(b2)

    @property
    def eps(self) -> float:
        """The eps of the first group."""
        return float(self.param_groups[0]["eps"])

    def step(self) -> None:
        """One Adam update of every parameter."""
        self.t += 1
        grads = self.grads()
        m, v, steps = self.m, self.v, self.steps
        k = 0
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            last = 0
            c1 = c2 = 1.0
            for p in group["params"]:
                g = grads[k]
                if wd:
                    g += wd * p.data
                steps[k] += 1
                t = steps[k]
                if t != last:  # the bias corrections, for this step count
                    last, c1, c2 = t, 1.0 - b1**t, 1.0 - b2**t
                m[k] = b1 * m[k] + (1.0 - b1) * g
                v[k] = b2 * v[k] + (1.0 - b2) * g * g
                p.data -= lr * (m[k] / c1) / (math.sqrt(v[k] / c2) + eps)
                k += 1
