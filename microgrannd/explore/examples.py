"""Graphs to explore: micrograd's demo network with its calls recorded as scopes.

:func:`demo_network` builds ``MLP(2, [16, 16, 1])`` from :class:`~microgrannd.nn.Neuron`
objects and calls it on one input inside nested scopes named ``MLP``,
``Layer`` and ``Neuron``, so the explorer can show it collapsed to layers and
let you expand a layer, then a neuron.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from microgrannd.engine import Value
from microgrannd.modes import scope
from microgrannd.nn import Neuron

__all__ = ["demo_network"]


def demo_network(sizes: Sequence[int] = (2, 16, 16, 1), x: Sequence[float] = (1.0, -2.0),
                 seed: int = 0) -> tuple[Value, list[Value]]:
    """An MLP of layer ``sizes`` (ReLU, a linear last layer) on inputs ``x``: its output and its parameters.

    The weights come from ``seed``; each call is recorded as a scope: ``MLP``
    around ``Layer`` around ``Neuron``.  The inputs are named ``x0``, ``x1``...
    Give the parameters to :func:`~microgrannd.explore` (``params=``) so that
    each sits inside its neuron.
    """
    if len(x) != sizes[0]:
        raise ValueError(f"demo_network: {len(x)} inputs for a first layer of {sizes[0]}")
    layers = [[Neuron(nin, nonlin=k < len(sizes) - 2, rng=seed * 1000 + 100 * k + j) for j in range(nout)]
              for k, (nin, nout) in enumerate(itertools.pairwise(sizes))]
    h: list[Value] = [Value(float(v), f"x{i}") for i, v in enumerate(x)]
    with scope("MLP"):
        for layer in layers:
            with scope("Layer"):
                outs = []
                for n in layer:
                    with scope("Neuron"):
                        outs.append(n(h))
                h = outs
    return h[0], [p for layer in layers for n in layer for p in n.parameters()]
