"""nn calls record their nodes in scopes (MLP > Layer > Neuron), and the scopes change no number."""

from __future__ import annotations

import random
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import Value, nn
from microgrannd.modes import current_mode
from microgrannd.walk import toposort


def names(v: Value) -> tuple[str, ...]:
    return tuple(s.name for s in v.scope.path()) if v.scope is not None else ()


def test_an_mlp_call_nests_mlp_layer_neuron() -> None:
    model = nn.MLP(2, [3, 2, 1], rng=0)
    out = model([Value(0.5, "x1"), Value(-1.0, "x2")])
    interior = [v for v in toposort(out) if v.parents]
    assert {names(v) for v in interior} == {("MLP", "Layer", "Neuron")}
    neurons = {v.scope for v in interior}
    assert len(neurons) == 3 + 2 + 1  # one scope per neuron call
    layers = {s.parent for s in neurons}
    assert len(layers) == 3 and len({s.parent for s in layers}) == 1
    assert out.scope is not None and out.scope.parent in layers
    leaves = [v for v in toposort(out) if not v.parents]
    assert all(v.scope is None for v in leaves)  # weights, inputs and constants belong to no call


def test_each_call_is_its_own_scope() -> None:
    neuron = nn.Neuron(2, rng=1)
    a, b = neuron([1.0, 2.0]), neuron([1.0, 2.0])
    assert names(a) == names(b) == ("Neuron",)
    assert a.scope is not b.scope and a.scope.id != b.scope.id
    layer = nn.Layer(2, 2, rng=1)
    first, second = layer([1.0, 2.0]), layer([1.0, 2.0])
    assert [names(v) for v in first] == [("Layer", "Neuron")] * 2
    assert first[0].scope.parent is first[1].scope.parent  # one layer call
    assert first[0].scope.parent is not second[0].scope.parent
    assert first[0].scope is not first[1].scope  # two neurons


def test_scopes_nest_under_the_callers_scope_and_the_mode_is_restored() -> None:
    model = nn.MLP(2, [2, 1], rng=2)
    before = current_mode()
    with mg.scope("loss"):
        out = model([1.0, -1.0])
        inside = current_mode()
    assert names(out) == ("loss", "MLP", "Layer", "Neuron")
    assert inside.scope is not None and inside.scope.name == "loss"
    assert current_mode() is before


def test_a_composite_inside_a_neuron_nests_under_it() -> None:
    neuron = nn.Neuron(2, activation="sigmoid", rng=3)
    out = nn.Layer(2, 1, activation="sigmoid", rng=3)([0.5, 0.5])
    assert names(out) == ("Layer", "Neuron", "sigmoid")
    assert names(neuron([0.5, 0.5])) == ("Neuron", "sigmoid")


def test_dropout_records_its_scope_only_when_it_makes_nodes() -> None:
    net = nn.MLP(2, [8, 1], dropout=0.5, rng=4)
    out = net([1.0, 2.0])
    dropped = [v for v in toposort(out) if "Dropout" in names(v)]
    assert dropped and all(names(v) == ("MLP", "Dropout") for v in dropped)
    net.eval()
    assert not any("Dropout" in names(v) for v in toposort(net([1.0, 2.0])))


def test_a_module_in_a_layer_that_is_not_a_plain_neuron_is_called_in_the_layer_scope() -> None:
    class Doubling(nn.Neuron):
        def __call__(self, x: Any) -> Value:
            return super().__call__(x) * 2.0

    layer = nn.Layer(2, 2, rng=5)
    layer.neurons[1] = Doubling(2, rng=5)
    plain, doubled = layer([1.0, 1.0])
    assert names(plain) == ("Layer", "Neuron")
    assert names(doubled) == ("Layer",)  # its own * 2, recorded in the layer
    assert names(doubled.parents[0]) == ("Layer", "Doubling")
    assert doubled.parents[0].scope.parent is plain.scope.parent


def test_the_mode_is_restored_when_a_neuron_raises() -> None:
    def boom(v: Value) -> Value:
        raise RuntimeError("boom")

    before = current_mode()
    for module in (nn.Neuron(2, activation=boom, rng=0), nn.Layer(2, 3, activation=boom, rng=0),
                   nn.MLP(2, [3, 1], activation=boom, rng=0)):
        with pytest.raises(RuntimeError, match="boom"):
            module([1.0, 2.0])
        assert current_mode() is before


def test_no_grad_records_nothing_and_keeps_its_mode() -> None:
    model = nn.MLP(2, [3, 1], rng=6)
    with mg.no_grad():
        out = model([1.0, 2.0])
        assert not current_mode().grad_enabled
    assert not out.parents and not out.requires_grad and out.scope is None


# --- scopes change no number: the same network written with plain Values


def by_hand(model: nn.MLP, x: list[Any]) -> Value:
    """The model's function, recorded without any nn call (so without its scopes)."""
    h: list[Any] = x
    for li, layer in enumerate(model.layers):
        outs = []
        for n in layer.neurons:
            act = sum((w * xi for w, xi in zip(n.w, h, strict=True)), n.b)
            outs.append(act.relu() if li < len(model.layers) - 1 else act)
        h = outs
    return h[0]


def demo_loss(score_of: Any, model: nn.MLP, X: list[list[Any]], y: list[Any]) -> Value:
    scores = [score_of(list(row)) for row in X]
    losses = [(1 + -yi * s).relu() for yi, s in zip(y, scores, strict=True)]
    return sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in model.parameters())


def data(n: int = 12) -> tuple[list[list[float]], list[int]]:
    rng = random.Random(8)
    X = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(n)]
    return X, [1 if a * b > 0 else -1 for a, b in X]


def test_scopes_change_no_data_and_no_gradient() -> None:
    X, y = data()
    model = nn.MLP(2, [16, 16, 1], rng=7)
    scoped = demo_loss(model, model, X, y)
    assert any(v.scope is not None for v in toposort(scoped))
    model.zero_grad()
    scoped.backward()
    grads = [p.grad for p in model.parameters()]
    plain = demo_loss(lambda x: by_hand(model, x), model, X, y)
    assert all(v.scope is None for v in toposort(plain))
    model.zero_grad()
    plain.backward()
    assert plain.data == scoped.data
    assert [p.grad for p in model.parameters()] == grads
    assert any(g != 0.0 for g in grads)


@pytest.mark.parametrize("method", ["codegen", "tape"])
def test_a_compiled_step_of_an_nn_model_equals_the_eager_one(method: str) -> None:
    X, y = data(6)
    model = nn.MLP(2, [5, 4, 1], rng=9)
    step = mg.compile(lambda Xb, yb: demo_loss(model, model, Xb, yb), X, y, argnums=(), method=method)
    assert set(step.captured) == set(model.parameters())
    for k in range(3):
        model.zero_grad()
        eager = demo_loss(model, model, X, y)
        eager.backward()
        grads = [p.grad for p in model.parameters()]
        model.zero_grad()
        assert step.backward(X, y) == eager.data
        assert [p.grad for p in model.parameters()] == pytest.approx(grads, rel=1e-14, abs=1e-300)
        for p, g in zip(model.parameters(), grads, strict=True):
            p.data -= 0.5 * g
        X = [[a + 0.1 * k, b] for a, b in X]
