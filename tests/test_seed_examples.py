"""Seed examples 1 and 2, with the exact numbers of the tutorials."""

from __future__ import annotations

import pytest

import microgrannd as mg
from microgrannd import Value


def test_shopping_apples() -> None:
    apple, count, tax = Value(100.0), Value(2.0), Value(1.1)
    price = apple * count * tax
    price.backward()
    assert price.data == 220.00000000000003
    assert (apple.grad, count.grad, tax.grad) == (2.2, 110.00000000000001, 200.0)


def test_shopping_apples_and_oranges() -> None:
    apple, apples, orange, oranges, tax = Value(100.0), Value(2.0), Value(150.0), Value(3.0), Value(1.1)
    price = (apple * apples + orange * oranges) * tax
    price.backward()
    assert price.data == 715.0000000000001
    assert apple.grad == 2.2
    assert apples.grad == 110.00000000000001
    assert orange.grad == 3.3000000000000003
    assert oranges.grad == 165.0
    assert tax.grad == 650.0


def test_multiply_sends_back_the_other_input_and_add_passes_through() -> None:
    a, b = Value(3.0), Value(5.0)
    (a * b).backward(2.0)
    assert (a.grad, b.grad) == (10.0, 6.0)
    a, b = Value(3.0), Value(5.0)
    (a + b).backward(2.0)
    assert (a.grad, b.grad) == (2.0, 2.0)


XS = [-1.0, 3.0, -7.2, 5.6]


def test_relu_forward_and_backward() -> None:
    xs = [Value(x) for x in XS]
    ys = [x.relu() for x in xs]
    for y in ys:
        y.backward(3.0)
    assert [y.data for y in ys] == [0.0, 3.0, 0.0, 5.6]
    assert [x.grad for x in xs] == [0.0, 3.0, 0.0, 3.0]
    x0 = Value(0.0)
    x0.relu().backward()
    assert x0.grad == 0.0


def test_sigmoid_forward_and_backward_with_upstream_three() -> None:
    xs = [Value(x) for x in XS]
    ys = [mg.sigmoid(x) for x in xs]
    for y in ys:
        y.backward(3.0)
    # the tutorial prints rounded numbers: compare to the digits it shows
    shown_y = ["0.268941421", "0.952574127", "0.000746028834", "0.996315760"]
    shown_dx = ["0.5898358", "0.13552998", "0.00223642", "0.011012"]
    assert [round(y.data, decimals(s)) for y, s in zip(ys, shown_y, strict=True)] == [float(s) for s in shown_y]
    assert [round(x.grad, decimals(s)) for x, s in zip(xs, shown_dx, strict=True)] == [float(s) for s in shown_dx]


def decimals(shown: str) -> int:
    return len(shown.split(".")[1])


def test_sigmoid_backward_node_by_node() -> None:
    g = 3.0
    for x0 in XS:
        x = Value(x0)
        y = mg.sigmoid(x)
        y.backward(g)
        mul, exp, add, _rec = [v for v in mg.toposort(y) if v.parents]
        yv = y.data
        assert add.grad == pytest.approx(-g * yv * yv, rel=1e-15)  # reciprocal: -g*y^2
        assert exp.grad == add.grad  # add passes it on unchanged
        assert mul.grad == pytest.approx(add.grad * exp.data, rel=1e-15)  # times e^-x
        assert x.grad == pytest.approx(-mul.grad, rel=1e-15)  # times -1
        assert x.grad == pytest.approx(g * yv * yv * exp.data, rel=1e-14)
        assert x.grad == pytest.approx(g * yv * (1 - yv), rel=1e-9)
