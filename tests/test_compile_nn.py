"""Compiling a network's loss: a training step on floats that equals the graph's."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import Value


def make_params(rng: random.Random, sizes: tuple[int, ...] = (2, 5, 4, 1)) -> list[list[list[Value]]]:
    return [[[Value(rng.uniform(-1, 1)) for _ in range(nin + 1)] for _ in range(nout)]
            for nin, nout in itertools.pairwise(sizes)]


def flat(layers: list[list[list[Any]]]) -> list[Any]:
    return [p for layer in layers for neuron in layer for p in neuron]


def mlp(layers: list[list[list[Any]]], x: list[Any]) -> Any:
    for li, layer in enumerate(layers):
        out = []
        for neuron in layer:
            *w, b = neuron
            act = sum((wi * xi for wi, xi in zip(w, x, strict=True)), b)
            out.append(act if li == len(layers) - 1 else act.relu())
        x = out
    return x[0]


def shape(params: list[Any], like: list[list[list[Any]]]) -> list[list[list[Any]]]:
    it = iter(params)
    return [[[next(it) for _ in neuron] for neuron in layer] for layer in like]


def hinge(layers: list[list[list[Any]]], X: list[list[Any]], y: list[Any]) -> Any:
    losses = [(1 + -yi * mlp(layers, x)).relu() for x, yi in zip(X, y, strict=True)]
    return sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in flat(layers))


def batch(rng: random.Random, n: int = 12) -> tuple[list[list[float]], list[float]]:
    X = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(n)]
    return X, [1.0 if x[0] * x[1] > 0 else -1.0 for x in X]


@pytest.mark.parametrize("method", ["codegen", "tape"])
def test_loss_over_a_parameter_list_and_a_batch(method: str) -> None:
    rng = random.Random(5)
    layers = make_params(rng)
    params = flat(layers)

    def loss(ps: list[Any], X: list[list[Any]], y: list[Any]) -> Any:
        return hinge(shape(ps, layers), X, y)

    X, y = batch(rng)
    c = mg.compile(loss, [p.data for p in params], X, y, argnums=0, method=method)
    for _ in range(20):  # new parameters and new batches, plain floats in and out
        floats = [rng.uniform(-1, 1) for _ in params]
        X, y = batch(rng)
        value, grads = c(floats, X, y)
        leaves = [Value(p) for p in floats]
        out = loss(leaves, X, y)
        out.backward()
        assert value == out.data
        for g, leaf in zip(grads, leaves, strict=True):
            assert abs(g - leaf.grad) <= 4 * abs(leaf.grad) * 2**-52


def test_compiled_training_equals_uncompiled_training() -> None:
    """The optimizer sees the same Value.grad and the parameters follow the same path."""
    rng = random.Random(7)
    X, y = batch(rng, 20)
    a, b = make_params(random.Random(3)), make_params(random.Random(3))
    pa, pb = flat(a), flat(b)
    # compiled: the loss closes over b's parameters, which are captured
    step = mg.compile(lambda Xb, yb: hinge(b, Xb, yb), X, y, argnums=())
    assert set(step.captured) == set(pb)
    for k in range(15):
        lr = 1.0 - 0.9 * k / 15
        loss_a = hinge(a, X, y)
        for p in pa:
            p.grad = 0.0
        loss_a.backward()
        for p in pb:
            p.grad = 0.0
        loss_b = step.backward(X, y)
        assert loss_b == loss_a.data
        for p, q in zip(pa, pb, strict=True):
            assert abs(p.grad - q.grad) <= 4 * abs(p.grad) * 2**-52
            p.data -= lr * p.grad
            q.data -= lr * q.grad
    assert max(abs(p.data - q.data) for p, q in zip(pa, pb, strict=True)) < 1e-12


def test_value_arguments_receive_gradients_in_backward_mode() -> None:
    rng = random.Random(9)
    layers = make_params(rng, (2, 3, 1))
    params = flat(layers)
    X, y = batch(rng, 5)

    def loss(ps: list[Any], X: list[list[Any]], y: list[Any]) -> Any:
        return hinge(shape(ps, layers), X, y)

    c = mg.compile(loss, params, X, y, argnums=0)
    value = c.backward(params, X, y)
    ref = [Value(p.data) for p in params]
    out = loss(ref, X, y)
    out.backward()
    assert value == out.data
    assert [p.grad for p in params] == pytest.approx([r.grad for r in ref], rel=1e-15)
    # the batch gets no gradient: it was not selected by argnums
    assert c(params, X, y)[1] == pytest.approx([r.grad for r in ref], rel=1e-15)
