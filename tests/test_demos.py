"""Each demo's outcome with a fixed seed, run as functions with small sizes (one subprocess smoke test)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from microgrannd import demo_runner, nn

ROOT = Path(__file__).resolve().parent.parent
DEMOS = ROOT / "demos"


def demo(name: str) -> Any:
    """Import a demo file as a module."""
    return demo_runner.load(DEMOS / f"{name}.py")


def test_shopping_exact_numbers() -> None:
    shopping = demo("shopping")
    one = shopping.apples()
    assert one["price"].data == 220.00000000000003
    assert [one[k].grad for k in ("apple", "apple count", "tax")] == [2.2, 110.00000000000001, 200.0]
    two = shopping.apples_and_oranges()
    assert two["price"].data == 715.0000000000001
    grads = [two[k].grad for k in ("apple", "apple count", "orange", "orange count", "tax")]
    assert grads == [2.2, 110.00000000000001, 3.3000000000000003, 165.0, 650.0]


def test_relu_sigmoid_vectors() -> None:
    r = demo("relu_sigmoid").run()
    assert r.relu_y == [0.0, 3.0, 0.0, 5.6]
    assert r.relu_dx == [0.0, 3.0, 0.0, 3.0]
    assert r.sigmoid_y == [1.0 / (1.0 + math.exp(-x)) for x in r.x]
    assert r.sigmoid_y == pytest.approx([0.268941421, 0.952574127, 0.000746028834, 0.996315760], rel=1e-8)
    assert r.sigmoid_dx == pytest.approx([0.5898358, 0.13552998, 0.00223642, 0.011012], rel=1e-4)
    assert r.sigmoid_dx == pytest.approx([3 * y * (1 - y) for y in r.sigmoid_y], rel=1e-14)
    assert r.fused_dx == pytest.approx(r.sigmoid_dx, rel=1e-14)
    assert r.sigmoid_nodes == ["mul", "exp", "add", "reciprocal"]


def test_gradient_check_agrees() -> None:
    r = demo("gradient_check").run(batch=3, n_in=4, n_out=5, seed=0)
    assert r.n_checked == 3 * 4 + 4 * 5 + 5
    assert r.max_rel_diff < 1e-6
    assert r.max_dscore_diff < 1e-12
    assert r.max_affine_diff < 1e-12


def test_vanishing_gradients_sigmoid_starves_first_layer() -> None:
    vg = demo("vanishing_gradients")
    runs = {a: vg.train(a, 200, 0.05, seed=8, record_every=200) for a in ("sigmoid", "tanh", "relu")}
    first = {a: r.layer_grads[0][0] for a, r in runs.items()}
    assert first["sigmoid"] < 1e-3 * min(first["tanh"], first["relu"])
    assert runs["sigmoid"].layer_grads[0][0] < 1e-3 * runs["sigmoid"].layer_grads[0][-1]
    assert runs["tanh"].accuracy == 1.0 and runs["relu"].accuracy == 1.0
    assert runs["sigmoid"].accuracy == 0.5


def test_delta_rule_single_neuron_and_xor() -> None:
    d = demo("delta_rule_xor")
    fit, gap = d.single_neuron(d.AND_LIKE, 1000, 0.9, seed=8)
    assert fit.outputs == pytest.approx([0.034, 0.027, 0.978, 0.973], abs=1e-3)
    assert gap < 1e-12  # the hand-derived delta rule is backprop's gradient
    xor1, _ = d.single_neuron(d.XOR, 1000, 0.9, seed=8)
    assert all(abs(o - 0.5) < 0.1 for o in xor1.outputs)
    ce = d.two_layer(True, 300, 0.9, seed=8)
    assert [round(o) for o in ce.outputs] == [0, 1, 1, 0]
    assert max(abs(o - t) for o, t in zip(ce.outputs, d.XOR, strict=True)) < 0.05


def test_digits_all_five_right_and_noise() -> None:
    g = demo("digits")
    r = g.train(20, 0.003, 0.0, "uniform", seed=0, momentum=0.9)
    assert r.train_correct == 5
    assert r.one_flip > 0.7
    assert g.flipped([0.0, 1.0], (1,)) == [0.0, 0.0]


def test_digits_dropout_is_active_only_in_training() -> None:
    g = demo("digits")
    r = g.train(3, 0.003, 0.5, "fan_in", seed=0, momentum=0.9)
    assert not r.model.training
    assert r.model.dropouts and all(not d.training for d in r.model.dropouts)


def test_moons_accuracy() -> None:
    m = demo("moons")
    X, y = m.make_moons(40, 0.1, seed=0)
    assert sorted(set(y)) == [-1.0, 1.0] and len(X) == 40
    model = nn.MLP(2, [16, 16, 1], init="uniform", rng=0)
    seen: list[str] = []

    def step(model: nn.MLP, X: list[list[float]], y: list[float], lr: float) -> tuple[float, float]:
        seen.append("step")
        return m.eager_step(model, X, y, lr)

    hist = m.train(model, X, y, 30, step)
    assert len(seen) == 30 and hist.losses[-1] < hist.losses[0]
    assert m.accuracy(model, X, y) >= 0.95


def test_moons_compiled_step_trains_like_the_eager_step() -> None:
    m = demo("moons")
    X, y = m.make_moons(30, 0.1, seed=1)
    eager, compiled = nn.MLP(2, [16, 16, 1], init="uniform", rng=3), nn.MLP(2, [16, 16, 1], init="uniform", rng=3)
    he = m.train(eager, X, y, 8, m.STEPS["eager"]())
    hc = m.train(compiled, X, y, 8, m.STEPS["compiled"]())
    assert hc.accuracies == he.accuracies
    assert hc.losses == pytest.approx(he.losses, rel=1e-12)
    for a, b in zip(eager.parameters(), compiled.parameters(), strict=True):
        assert a.data == pytest.approx(b.data, rel=1e-12, abs=1e-15)


def test_demo_runner_lists_and_rejects(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_runner.main([]) == 0
    listing = capsys.readouterr().out
    for name in ("shopping", "relu_sigmoid", "gradient_check", "vanishing_gradients", "delta_rule_xor",
                 "digits", "moons"):
        assert name in listing
    assert demo_runner.main(["no_such_demo"]) == 2
    assert demo_runner.main(["gradient_check"]) == 0


def test_demo_without_matplotlib_says_how_to_get_plots(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    demo("shopping")  # puts demos/ on sys.path
    import _demolib

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert _demolib.pyplot() is None
    assert 'pip install matplotlib' in capsys.readouterr().out


def test_shopping_runs_as_a_script(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(DEMOS / "shopping.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout
    assert "price = 715.0000000000001" in out
    assert "d price / d orange count  = 165.0" in out
