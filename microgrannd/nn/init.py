"""Weight initialisation and the seedable random generator of :mod:`microgrannd.nn`.

Every module that draws random numbers takes ``rng``: a :class:`random.Random`,
an int seed, or ``None`` for the package's shared generator, which
:func:`seed` reseeds.  Nothing here touches the global :mod:`random` state.

Schemes (the ``init`` argument of :class:`~microgrannd.nn.Neuron`,
:class:`~microgrannd.nn.Layer` and :class:`~microgrannd.nn.MLP`):

``"fan_in"`` (the default)
    weights and bias uniform in ``[-1/sqrt(nin), 1/sqrt(nin)]``, as PyTorch's
    ``nn.Linear`` does: a unit's pre-activation keeps a similar scale whatever
    the number of inputs.
``"uniform"``
    weights uniform in ``[-1, 1]``, bias 0 (micrograd's scheme; with the same
    seed, the same numbers as micrograd after ``random.seed(seed)``).
``"normal"``
    weights and bias from a standard normal (the tutorials' scheme).

A callable ``init(nin, rng) -> (weights, bias)`` is accepted too.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

__all__ = ["INITS", "Init", "RngLike", "default_rng", "draw", "get_rng", "seed"]

RngLike = random.Random | int | None
Init = str | Callable[[int, random.Random], tuple[list[float], float]]

default_rng = random.Random()
"""The shared generator used when a module is given no ``rng``."""


def seed(n: int | None) -> None:
    """Reseed the shared generator (``None`` seeds from the system)."""
    default_rng.seed(n)


def get_rng(rng: RngLike) -> random.Random:
    """A generator for ``rng``: itself, a new one seeded with an int, or the shared one."""
    if rng is None:
        return default_rng
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, int) and not isinstance(rng, bool):
        return random.Random(rng)
    raise TypeError(f"rng must be a random.Random, an int seed or None, not {type(rng).__name__}")


def _fan_in(nin: int, rng: random.Random) -> tuple[list[float], float]:
    bound = 1.0 / math.sqrt(nin) if nin > 0 else 0.0
    w = [rng.uniform(-bound, bound) for _ in range(nin)]
    return w, rng.uniform(-bound, bound)


def _uniform(nin: int, rng: random.Random) -> tuple[list[float], float]:
    return [rng.uniform(-1, 1) for _ in range(nin)], 0.0


def _normal(nin: int, rng: random.Random) -> tuple[list[float], float]:
    w = [rng.gauss(0.0, 1.0) for _ in range(nin)]
    return w, rng.gauss(0.0, 1.0)


INITS: dict[str, Callable[[int, random.Random], tuple[list[float], float]]] = {
    "fan_in": _fan_in,
    "uniform": _uniform,
    "normal": _normal,
}


def draw(init: Init, nin: int, rng: random.Random) -> tuple[list[float], float]:
    """Draw one neuron's ``nin`` weights and its bias with the scheme ``init``."""
    if callable(init):
        w, b = init(nin, rng)
        weights = [float(x) for x in w]
        if len(weights) != nin:
            raise ValueError(f"init returned {len(weights)} weights for a neuron of nin={nin}")
        return weights, float(b)
    try:
        return INITS[init](nin, rng)
    except KeyError:
        raise ValueError(f"unknown init {init!r}; choose one of {sorted(INITS)} or pass a callable") from None
