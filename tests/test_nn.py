"""microgrannd.nn: modules, initialisation, dropout, losses, optimizers."""

from __future__ import annotations

import math
import random

import pytest

import microgrannd as mg
from microgrannd import Value, nn


def test_mlp_output_shapes_and_parameter_count() -> None:
    one = nn.MLP(3, [4, 1], rng=0)
    many = nn.MLP(3, [4, 2], rng=0)
    assert isinstance(one([1.0, 2.0, 3.0]), Value)
    out = many([1.0, 2.0, 3.0])
    assert isinstance(out, list) and len(out) == 2
    assert len(one.parameters()) == 3 * 4 + 4 + 4 + 1
    assert repr(one) == "MLP of [Layer of [ReLUNeuron(3), ReLUNeuron(3), ReLUNeuron(3), ReLUNeuron(3)], " \
        "Layer of [LinearNeuron(4)]]"


def _manual_forward(model: nn.MLP, x: list[float], act: object, out_act: object = None) -> list[float]:
    h = x
    for i, layer in enumerate(model.layers):
        h = [sum(w.data * xi for w, xi in zip(n.w, h, strict=True)) + n.b.data for n in layer.neurons]  # type: ignore[union-attr]
        f = act if i < len(model.layers) - 1 else out_act
        if f is not None:
            h = [f(v) for v in h]  # type: ignore[operator]
    return h


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("relu", lambda v: max(v, 0.0)),
        ("tanh", math.tanh),
        ("sigmoid", lambda v: 1 / (1 + math.exp(-v))),
        ("leaky_relu", lambda v: v if v > 0 else 0.01 * v),
    ],
)
def test_hidden_activation_and_linear_output(name: str, fn: object) -> None:
    model = nn.MLP(2, [3, 3, 2], name, rng=1, init="normal")
    x = [0.7, -1.3]
    got = [v.data for v in model(x)]  # type: ignore[union-attr]
    assert got == pytest.approx(_manual_forward(model, x, fn), rel=1e-12)


def test_callable_activation_and_output_activation() -> None:
    model = nn.MLP(2, [3, 1], lambda v: v * v, output_activation="sigmoid", rng=2)
    x = [0.5, 2.0]
    expected = _manual_forward(model, x, lambda v: v * v, lambda v: 1 / (1 + math.exp(-v)))
    assert model(x).data == pytest.approx(expected[0], rel=1e-12)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown activation"):
        nn.MLP(2, [3, 1], "swish")


def test_uniform_init_draws_what_micrograd_draws() -> None:
    micrograd_nn = pytest.importorskip("micrograd.nn")
    random.seed(1337)
    theirs = micrograd_nn.MLP(2, [16, 16, 1])
    ours = nn.MLP(2, [16, 16, 1], init="uniform", rng=random.Random(1337))
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]


def test_init_schemes_scale_and_seeding() -> None:
    fan = nn.Layer(64, 50, rng=3)
    bound = 1 / math.sqrt(64)
    ws = [w.data for n in fan.neurons for w in n.w]
    assert max(map(abs, ws)) <= bound and max(map(abs, ws)) > 0.9 * bound
    assert all(abs(n.b.data) <= bound for n in fan.neurons)  # type: ignore[union-attr]
    uni = nn.Layer(64, 50, init="uniform", rng=3)
    assert max(abs(w.data) for n in uni.neurons for w in n.w) > 0.9
    assert all(n.b.data == 0.0 for n in uni.neurons)  # type: ignore[union-attr]
    normal = [w.data for n in nn.Layer(64, 50, init="normal", rng=3).neurons for w in n.w]
    sd = math.sqrt(sum(w * w for w in normal) / len(normal))
    assert 0.9 < sd < 1.1
    same = [p.data for p in nn.MLP(3, [4, 2], rng=5).parameters()]
    assert same == [p.data for p in nn.MLP(3, [4, 2], rng=5).parameters()]
    nn.seed(11)
    a = [p.data for p in nn.MLP(3, [4, 2]).parameters()]
    nn.seed(11)
    assert a == [p.data for p in nn.MLP(3, [4, 2]).parameters()]
    with pytest.raises(ValueError, match="unknown init"):
        nn.Neuron(3, init="xavier")


def test_zero_grad_train_eval_and_bias_free() -> None:
    model = nn.MLP(2, [3, 1], dropout=0.5, rng=0)
    model([1.0, 2.0]).backward()  # type: ignore[union-attr]
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
    model.eval()
    assert not model.dropouts[0].training and not model.layers[0].neurons[0].training
    model.train()
    assert model.dropouts[0].training
    assert len(nn.MLP(3, [4, 1], bias=False).parameters()) == 3 * 4 + 4


def test_dropout_train_and_eval() -> None:
    xs = [Value(float(i + 1)) for i in range(2000)]
    drop = nn.Dropout(0.25, rng=0)
    out = drop(xs)
    dropped = [o for o in out if o.data == 0.0]
    assert 0.2 < len(dropped) / len(xs) < 0.3
    assert all(o.data == pytest.approx(x.data / 0.75) for o, x in zip(out, xs, strict=True) if o.data != 0)
    drop.eval()
    assert drop(xs) == xs
    assert all(v.data == 0.0 for v in nn.Dropout(1.0).train()([Value(1.0)] * 3))  # type: ignore[operator]
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_dropout_gradient_flows_only_through_kept_units() -> None:
    x = [Value(2.0) for _ in range(200)]
    out = nn.Dropout(0.5, rng=1)(x)
    sum(out, Value(0.0)).backward()
    for xi, o in zip(x, out, strict=True):
        assert xi.grad == (2.0 if o.data != 0 else 0.0)


def test_mse_and_hinge_values_and_gradients() -> None:
    p = [Value(1.0), Value(3.0)]
    loss = nn.mse(p, [0.0, 1.0])
    loss.backward()
    assert loss.data == 2.5
    assert [v.grad for v in p] == [1.0, 2.0]
    s = [Value(0.5), Value(-2.0)]
    h = nn.hinge(s, [1, 1])
    h.backward()
    assert h.data == pytest.approx((0.5 + 3.0) / 2)
    assert [v.grad for v in s] == [-0.5, -0.5]


def test_binary_cross_entropy_on_probabilities() -> None:
    p = Value(0.8)
    loss = nn.binary_cross_entropy(p, 1.0)
    loss.backward()
    assert loss.data == pytest.approx(-math.log(0.8))
    assert p.grad == pytest.approx(-1 / 0.8)
    assert nn.binary_cross_entropy(Value(0.0), 1.0).data == 100.0  # clamped like PyTorch, not an error


@pytest.mark.parametrize(("z", "t"), [(1000.0, 0.0), (-1000.0, 1.0), (800.0, 1.0), (-40.0, 0.0), (0.3, 1.0)])
def test_bce_with_logits_is_stable_at_large_logits(z: float, t: float) -> None:
    zv = Value(z)
    loss = nn.binary_cross_entropy_with_logits(zv, t)
    loss.backward()
    exact = max(z, 0) + math.log1p(math.exp(-abs(z))) - t * z
    assert loss.data == pytest.approx(exact, rel=1e-12, abs=1e-300)
    assert zv.grad == pytest.approx(mg.sigmoid_fused(z) - t, rel=1e-12, abs=1e-300)
    assert math.isfinite(loss.data) and math.isfinite(zv.grad)


def test_bce_with_logits_matches_bce_of_sigmoid() -> None:
    for z, t in [(0.3, 1.0), (-1.2, 0.0), (2.0, 0.25)]:
        a = nn.binary_cross_entropy_with_logits(z, t)
        b = nn.binary_cross_entropy(mg.sigmoid(z), t)
        assert a == pytest.approx(b, rel=1e-12)


def test_cross_entropy_stable_and_gradient_is_softmax_minus_onehot() -> None:
    logits = [Value(1000.0), Value(-1000.0), Value(999.0)]
    loss = nn.cross_entropy(logits, 2)
    loss.backward()
    assert loss.data == pytest.approx(1.0 + math.log1p(math.exp(-1.0)), rel=1e-12)
    probs = nn.softmax([v.data for v in logits])
    assert sum(probs) == pytest.approx(1.0)
    onehot = [0.0, 0.0, 1.0]
    assert [v.grad for v in logits] == pytest.approx([p - t for p, t in zip(probs, onehot, strict=True)])
    assert nn.logsumexp([1000.0, 1000.0]) == pytest.approx(1000.0 + math.log(2))
    small = [0.1, -0.4, 2.0]
    direct = -math.log(math.exp(small[0]) / sum(math.exp(v) for v in small))
    assert nn.cross_entropy(small, 0) == pytest.approx(direct, rel=1e-12)
    assert [v for v in nn.log_softmax(small)] == pytest.approx([math.log(p) for p in nn.softmax(small)])
    with pytest.raises(IndexError):
        nn.cross_entropy(small, 3)


def test_sgd_momentum_against_hand_computation() -> None:
    p = Value(1.0)
    opt = nn.SGD([p], lr=0.1, momentum=0.9)
    for g in (0.5, -0.2):
        p.grad = g
        opt.step()
    # v1 = 0.5, p = 1 - 0.05 = 0.95; v2 = 0.9 * 0.5 - 0.2 = 0.25, p = 0.95 - 0.025 = 0.925
    assert p.data == pytest.approx(0.925, rel=1e-15)
    plain = Value(1.0)
    plain.grad = 2.0
    nn.SGD([plain], lr=0.1).step()
    assert plain.data == pytest.approx(0.8)
    opt.zero_grad()
    assert p.grad == 0.0


def test_adam_against_hand_computation() -> None:
    p = Value(1.0)
    opt = nn.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    p.grad = 0.5
    opt.step()
    # step 1: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps)
    assert p.data == pytest.approx(1.0 - 0.01 * 0.5 / (0.5 + 1e-8), rel=1e-14)
    before = p.data
    p.grad = -0.3
    opt.step()
    m = 0.9 * 0.05 + 0.1 * -0.3
    v = 0.999 * (0.001 * 0.25) + 0.001 * 0.09
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    assert p.data == pytest.approx(before - 0.01 * m_hat / (math.sqrt(v_hat) + 1e-8), rel=1e-14)


def test_training_a_tiny_network_reduces_the_loss() -> None:
    model = nn.MLP(2, [4, 1], "tanh", rng=0)
    opt = nn.Adam(model.parameters(), lr=0.05)
    data = [([0.0, 0.0], 0.0), ([0.0, 1.0], 1.0), ([1.0, 0.0], 1.0), ([1.0, 1.0], 0.0)]
    losses = []
    for _ in range(150):
        loss = nn.mse([model(x) for x, _ in data], [t for _, t in data])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.data)
    assert losses[-1] < 0.1 * losses[0]
