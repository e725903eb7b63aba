"""The tape: a traced graph as a flat list of instructions over a list of floats.

Two tight loops run it, one forward and one backward, with the primitive
table's own forward functions and VJP rules; memory stays bounded (no code is
generated), so it serves graphs too large for code generation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from microgrannd.compile.trace import DATA
from microgrannd.engine import Value
from microgrannd.ops import PRIMITIVES, Primitive

__all__ = ["tape"]


def _checked(prim: Primitive) -> Callable[..., float]:
    if prim.valid is None:
        return prim.forward

    def forward(*xs: float) -> float:
        prim.check(*xs)
        return prim.forward(*xs)

    return forward


def tape(root: Value, forward: list[Value], order: list[Value], inputs: list[Value], variable: set[Value],
         needs: set[Value], wrt: list[int]) -> Callable[[list[float]], tuple[float, list[float]]]:
    """A function of the inputs' numbers returning ``(value, gradients of the wrt inputs)``."""
    index: dict[Value, int] = {v: i for i, v in enumerate(inputs)}
    base: list[float] = [0.0] * len(inputs)
    fwd: list[tuple[Any, ...]] = []
    for v in forward:
        if v in index:
            continue
        index[v] = len(base)
        base.append(DATA.__get__(v))
        if v in variable:
            fwd.append((_checked(PRIMITIVES[v.op]), index[v], *[index[p] for p in v.parents]))
    bwd: list[tuple[Any, ...]] = []
    for v in reversed(order):
        if v.parents and v in needs:
            bwd.append((PRIMITIVES[v.op].vjp, index[v], *[index[p] for p in v.parents]))
    m = len(inputs)
    size = len(base)
    r = index[root]
    seeded = root in needs
    wrt_index = [index[inputs[i]] for i in wrt]

    def run(xs: list[float]) -> tuple[float, list[float]]:
        vals = base[:]
        vals[:m] = xs
        for ins in fwd:
            if len(ins) == 4:
                fn, k, i, j = ins
                vals[k] = fn(vals[i], vals[j])
            elif len(ins) == 3:
                fn, k, i = ins
                vals[k] = fn(vals[i])
            else:
                vals[ins[1]] = ins[0](*[vals[i] for i in ins[2:]])
        grads = [0.0] * size
        if seeded:
            grads[r] = 1.0
        for ins in bwd:
            g = grads[ins[1]]
            if g == 0.0:  # a zero gradient sends nothing back (0 * inf stays 0)
                continue
            if len(ins) == 4:
                rule, k, i, j = ins
                da, db = rule(g, vals[i], vals[j], vals[k])
                grads[i] += da
                grads[j] += db
            elif len(ins) == 3:
                rule, k, i = ins
                (da,) = rule(g, vals[i], vals[k])
                grads[i] += da
            else:
                cs = ins[0](g, *[vals[i] for i in ins[2:]], vals[ins[1]])
                for i, c in zip(ins[2:], cs, strict=True):
                    grads[i] += c
        return vals[r], [grads[i] for i in wrt_index]

    return run
