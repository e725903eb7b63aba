"""Loss functions on Values (plain numbers work too).

Batch losses (:func:`mse`, :func:`binary_cross_entropy`,
:func:`binary_cross_entropy_with_logits`, :func:`hinge`) take a prediction and
a target, or two equal-length sequences of them, and return the mean.
:func:`softmax`, :func:`log_softmax`, :func:`logsumexp` and
:func:`cross_entropy` work on one sample's list of logits.

Each loss is recorded under a scope of its name, so a drawing shows it as one
labelled cluster.  The log-sum-exp family subtracts the largest logit (through
:func:`~microgrannd.stop_gradient`: the result does not depend on it) so
nothing overflows.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from microgrannd import functions
from microgrannd.engine import Value
from microgrannd.modes import composite, is_tracing

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "hinge",
    "l2",
    "log_softmax",
    "logsumexp",
    "mse",
    "softmax",
]

LOG_FLOOR = -100.0
""":func:`binary_cross_entropy` clamps ``log(p)`` at this value (as PyTorch does)."""


def _pairs(pred: Any, target: Any) -> list[tuple[Any, Any]]:
    if isinstance(pred, (Value, int, float)):
        return [(pred, target)]
    preds, targets = list(pred), list(target)
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions but {len(targets)} targets")
    if not preds:
        raise ValueError("a loss needs at least one prediction")
    return list(zip(preds, targets, strict=True))


def _mean(terms: list[Any]) -> Any:
    total = sum(terms[1:], terms[0])
    return total * (1.0 / len(terms)) if len(terms) > 1 else total


@composite("mse")
def mse(pred: Any, target: Any) -> Any:
    """Mean squared error ``mean((pred - target) ** 2)``."""
    return _mean([(p - t) ** 2 for p, t in _pairs(pred, target)])


_FLOOR = math.exp(LOG_FLOOR)


def _log_clamped(p: Any) -> Any:
    """``log(max(p, e**LOG_FLOOR))``: at least :data:`LOG_FLOOR`, with no gradient below it.

    The clamp is ``c + relu(p - c)``, recorded like any other step (so a
    compiled loss clamps at every call), and exactly ``p`` for ``p > 1e-27``.
    """
    return functions.log(functions.relu(p - _FLOOR) + _FLOOR)


def _check_probability(p: Any) -> None:
    """Refuse a probability outside [0, 1], where its number can be read (not while tracing)."""
    if isinstance(p, Value):
        if is_tracing():
            return
        x = p.data
    elif isinstance(p, numbers.Real) and not isinstance(p, bool):
        x = float(p)
    else:
        return  # not a number: the arithmetic below refuses it
    if not 0.0 <= x <= 1.0:  # NaN fails this too
        raise ValueError(f"binary_cross_entropy: prob must be a probability in [0, 1], not {x!r} "
                         "(for a score before the sigmoid, use binary_cross_entropy_with_logits)")


@composite("binary_cross_entropy")
def binary_cross_entropy(prob: Any, target: Any) -> Any:
    """Mean of ``-(t log p + (1 - t) log(1 - p))`` for probabilities ``p`` in [0, 1].

    Each log is clamped at -100 (so ``p = 0`` or ``1`` gives a large finite
    loss, not an error).  A probability outside [0, 1] (or NaN) is a
    ``ValueError``, as in PyTorch; inside :func:`microgrannd.compile`'s trace
    the numbers cannot be read, so the check is left to the eager calls.
    Prefer :func:`binary_cross_entropy_with_logits` on the score before the
    sigmoid: it is exact where this one saturates.
    """
    terms = []
    for p, t in _pairs(prob, target):
        _check_probability(p)
        terms.append(-(t * _log_clamped(p) + (1.0 - t) * _log_clamped(1.0 - p)))
    return _mean(terms)


@composite("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(logit: Any, target: Any) -> Any:
    """Binary cross-entropy of ``sigmoid(z)`` computed from the score ``z``.

    Uses ``softplus(z) - t z``, which is exact for every ``z``: no overflow at
    large scores and the gradient ``sigmoid(z) - t`` never vanishes by rounding.
    """
    return _mean([functions.softplus(z) - t * z for z, t in _pairs(logit, target)])


@composite("hinge")
def hinge(score: Any, target: Any) -> Any:
    """Mean max-margin loss ``relu(1 - t * s)`` for targets ``t`` in {-1, +1} (micrograd's demo)."""
    return _mean([functions.relu(1 + -t * s) for s, t in _pairs(score, target)])


@composite("l2")
def l2(params: Sequence[Any], alpha: float = 1.0) -> Any:
    """``alpha * sum(p * p)``, the L2 penalty on ``params``."""
    return alpha * sum((p * p for p in params), 0.0)


def _shift(xs: Sequence[Any]) -> Any:
    """The largest logit (to rounding), as a node no gradient flows through.

    Built as ``m + relu(x - m)`` over the logits and recorded, so a compiled
    function recomputes it at every call; the results do not depend on it,
    only their rounding and freedom from overflow do.
    """
    if not xs:
        raise ValueError("need at least one logit")
    m = xs[0]
    for x in xs[1:]:
        m = m + functions.relu(x - m)
    top = m if not isinstance(m, Value) else (None if is_tracing() else m.data)
    if top is not None and math.isinf(top):  # (a compiled loss gives NaN there instead)
        raise ValueError(f"logits with an infinite maximum ({top})")
    return functions.stop_gradient(m)


@composite("logsumexp")
def logsumexp(logits: Sequence[Any]) -> Any:
    """``log(sum(exp(x_i)))`` computed as ``m + log(sum(exp(x_i - m)))`` with ``m`` the largest logit."""
    m = _shift(logits)
    total = sum((functions.exp(x - m) for x in logits), 0.0)
    return functions.log(total) + m


@composite("log_softmax")
def log_softmax(logits: Sequence[Any]) -> list[Any]:
    """``x_i - logsumexp(x)`` for each logit."""
    lse = logsumexp(logits)
    return [x - lse for x in logits]


@composite("softmax")
def softmax(logits: Sequence[Any]) -> list[Any]:
    """``exp(x_i) / sum(exp(x_j))``, shifted by the largest logit so nothing overflows."""
    m = _shift(logits)
    exps = [functions.exp(x - m) for x in logits]
    inv = functions.reciprocal(sum(exps, 0.0))
    return [e * inv for e in exps]


@composite("cross_entropy")
def cross_entropy(logits: Sequence[Any], target: int) -> Any:
    """``-log(softmax(logits)[target])``, computed as ``logsumexp(logits) - logits[target]``.

    Its gradient with respect to the logits is ``softmax(logits) - onehot(target)``.
    """
    if not 0 <= target < len(logits):
        raise IndexError(f"target index {target} out of range for {len(logits)} logits")
    return logsumexp(logits) - logits[target]
