"""Neural networks on microgrannd Values: modules, losses, optimizers.

``MLP(nin, nouts, activation="relu")`` builds a network whose hidden layers use
``activation`` and whose last layer is linear; micrograd's ``nn`` demo code runs
unchanged against it.  Initialisation is selectable (``init="fan_in"``, the
default, ``"uniform"`` for micrograd's, ``"normal"`` for the tutorials') and
drawn from a seedable generator (``rng=`` per module, or :func:`seed`).
"""

from microgrannd.nn.init import INITS, default_rng, seed
from microgrannd.nn.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge,
    l2,
    log_softmax,
    logsumexp,
    mse,
    softmax,
)
from microgrannd.nn.module import ACTIVATIONS, MLP, Dropout, Layer, Module, Neuron
from microgrannd.nn.optim import SGD, Adam, Optimizer

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "MLP",
    "SGD",
    "Adam",
    "Dropout",
    "Layer",
    "Module",
    "Neuron",
    "Optimizer",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "default_rng",
    "hinge",
    "l2",
    "log_softmax",
    "logsumexp",
    "mse",
    "seed",
    "softmax",
]
