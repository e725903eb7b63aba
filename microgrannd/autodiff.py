"""The functional API: ``grad`` and ``value_and_grad``, which nest.

``grad(f)`` is a new function returning the derivative of ``f``.  Called on
plain numbers at top level it returns plain floats; called on Values, or
inside a function that is itself being differentiated, it returns Values
built as a graph, so ``grad(grad(f))`` gives second derivatives and so on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from functools import wraps
from typing import Any

from microgrannd.engine import Value
from microgrannd.modes import enable_grad
from microgrannd.ops import number
from microgrannd.walk import gradients

__all__ = ["grad", "value_and_grad"]

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
