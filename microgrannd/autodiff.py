"""The functional API: ``grad``, ``value_and_grad``, ``jvp``, ``hvp`` and ``hessian``, which nest.

``grad(f)`` is a new function returning the derivative of ``f``.  Called on
plain numbers at top level it returns plain floats; called on Values, or
inside a function that is itself being differentiated, it returns Values
built as a graph, so ``grad(grad(f))`` gives second derivatives and so on.
``jvp`` is forward mode, run by the same rules (see
:func:`microgrannd.walk.push_tangents`); ``hvp`` is forward over reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from functools import wraps
from typing import Any

from microgrannd.engine import Value
from microgrannd.modes import enable_grad
from microgrannd.ops import number
from microgrannd.walk import gradients, push_tangents, toposort

__all__ = ["grad", "hessian", "hvp", "jvp", "value_and_grad"]

# How many value_and_grad calls are running in this thread.  Inside one, a
# derivative may itself be differentiated (even when it is taken at plain
# numbers, with Values from an enclosing function in the closure), so it is
# built as a graph.
_DEPTH: ContextVar[int] = ContextVar("microgrannd_grad_depth", default=0)


def value_and_grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., tuple[Any, Any]]:
    """Return a function computing ``(f(*args), derivative of f)``.

    ``argnums`` selects the argument(s) to differentiate with respect to: an
    int gives one derivative, a sequence gives a tuple of them.  ``f`` must
    return a single scalar (a Value or a number).  The inputs ``f`` receives
    are fresh Values, so gradients never leak into other graphs and nested
    calls keep their variables apart.
    """
    indices = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @wraps(f)
    def wrapper(*args: Any) -> tuple[Any, Any]:
        # a function transform: it differentiates even inside no_grad()
        with enable_grad():
            return differentiate(*args)

    def differentiate(*args: Any) -> tuple[Any, Any]:
        for i in indices:
            if not -len(args) <= i < len(args):
                raise IndexError(f"argnums {i} out of range for {len(args)} arguments")
        nested = _DEPTH.get() > 0 or any(isinstance(a, Value) for a in args)
        inputs = list(args)
        for i in indices:
            a = args[i]
            # A Value argument (an enclosing grad's variable) gets a fresh
            # node in front of it, so that this level differentiates only
            # with respect to its own input.
            inputs[i] = a + 0.0 if isinstance(a, Value) else Value(number(a, f"argument {i}"))
        token = _DEPTH.set(_DEPTH.get() + 1)
        try:
            out = f(*inputs)
        finally:
            _DEPTH.reset(token)
        if isinstance(out, Value):
            grads = gradients(out, 1.0, create_graph=nested)
            ds = [grads.get(inputs[i], 0.0) for i in indices]
        else:
            out = number(out, f"{getattr(f, '__name__', 'f')} result")
            ds = [0.0 for _ in indices]
        if nested:
            value: Any = out if isinstance(out, Value) else Value(out, requires_grad=False)
            ds = [d if isinstance(d, Value) else Value(d, requires_grad=False) for d in ds]
        else:
            value = out.data if isinstance(out, Value) else out
        return value, (ds[0] if isinstance(argnums, int) else tuple(ds))

    return wrapper


def grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """Return a function computing the derivative of ``f`` (see value_and_grad)."""
    vg = value_and_grad(f, argnums)

    @wraps(f)
    def wrapper(*args: Any) -> Any:
        return vg(*args)[1]

    return wrapper


def _number(x: Any) -> float:
    return x.data if isinstance(x, Value) else float(x)


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Forward mode: ``(f(*primals), J(primals) @ tangents)``, the directional derivative.

    ``primals`` and ``tangents`` are sequences of the same length (one number
    per argument of ``f``).  ``f`` returns a scalar, or a tuple or list of
    them (then both results are lists).  The tangents are carried through
    ``f``'s graph by the same rules as backward.  Like :func:`grad` it nests:
    at Values, or inside a function being differentiated, the results are
    Values; ``jvp`` of ``grad(f)`` is a Hessian-vector product (:func:`hvp`).
    """
    primals, tangents = list(primals), list(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    nested = _DEPTH.get() > 0 or any(isinstance(a, Value) for a in [*primals, *tangents])
    with enable_grad():
        inputs = [a + 0.0 if isinstance(a, Value) else Value(number(a, f"primal {i}")) for i, a in enumerate(primals)]
        seeds = [t if isinstance(t, Value) else number(t, f"tangent {i}") for i, t in enumerate(tangents)]
        token = _DEPTH.set(_DEPTH.get() + 1)
        try:
            out = f(*inputs)
        finally:
            _DEPTH.reset(token)
        outs = list(out) if isinstance(out, tuple | list) else [out]
        order = list(dict.fromkeys(v for o in outs if isinstance(o, Value) for v in toposort(o)))
        pushed = push_tangents(order, dict(zip(inputs, seeds, strict=True)), create_graph=nested)
    ts = [pushed.get(o, 0.0) if isinstance(o, Value) else 0.0 for o in outs]
    if nested:
        values: list[Any] = [o if isinstance(o, Value) else Value(_number(o), requires_grad=False) for o in outs]
    else:
        values, ts = [_number(o) for o in outs], [_number(t) for t in ts]
    if isinstance(out, tuple | list):
        return values, ts
    return values[0], ts[0]


def hvp(f: Callable[..., Any], primals: Sequence[Any], v: Sequence[Any]) -> list[Any]:
    """The Hessian of scalar ``f`` at ``primals`` times ``v``: one number per input.

    Forward over reverse: :func:`jvp` of the gradient, so it costs about one
    gradient evaluation, whatever the number of inputs.
    """
    everything = tuple(range(len(primals)))
    return list(jvp(lambda *xs: list(grad(f, argnums=everything)(*xs)), primals, v)[1])


def hessian(f: Callable[..., Any]) -> Callable[..., list[list[Any]]]:
    """Return a function computing the Hessian of scalar ``f`` as a list of rows (for a few inputs)."""

    @wraps(f)
    def wrapper(*primals: Any) -> list[list[Any]]:
        n = len(primals)
        return [hvp(f, primals, [1.0 if j == i else 0.0 for j in range(n)]) for i in range(n)]

    return wrapper
