"""Graphs to explore: micrograd's demo network, whose calls ``nn`` records as scopes.

:func:`demo_network` calls ``MLP(2, [16, 16, 1])`` on one input.  ``nn``
records each call in a scope named after its class (``MLP`` > ``Layer`` >
``Neuron``), so the explorer can show it collapsed to layers and let you
expand a layer, then a neuron.
"""

from __future__ import annotations

from collections.abc import Sequence

from microgrannd.engine import Value
from microgrannd.nn import MLP

__all__ = ["demo_network"]


def demo_network(sizes: Sequence[int] = (2, 16, 16, 1), x: Sequence[float] = (1.0, -2.0),
                 seed: int = 0) -> tuple[Value, list[Value]]:
    """An MLP of layer ``sizes`` (ReLU, a linear last layer) on inputs ``x``: its output and its parameters.

    The weights come from ``seed``; the inputs are named ``x0``, ``x1``...
    The network itself is not kept: pass the parameters to
    :func:`~microgrannd.explore` (``params=``) so that each sits inside its
    neuron.
    """
    if len(x) != sizes[0]:
        raise ValueError(f"demo_network: {len(x)} inputs for a first layer of {sizes[0]}")
    net = MLP(sizes[0], list(sizes[1:]), rng=seed)
    out = net([Value(float(v), f"x{i}") for i, v in enumerate(x)])
    assert isinstance(out, Value), "the last layer has one neuron"
    return out, net.parameters()
