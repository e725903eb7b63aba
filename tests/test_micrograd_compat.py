"""Code written for micrograd's Value runs unchanged, with the same gradients."""

from __future__ import annotations

import pytest

from microgrannd import Value


def sanity(V: type) -> tuple[float, float]:
    x = V(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    return y.data, x.grad


def more_ops(V: type) -> tuple[float, float, float]:
    a = V(-4.0)
    b = V(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    return g.data, a.grad, b.grad


def test_micrograd_sanity_expression_by_hand() -> None:
    # y = h + q + q*x with z = 3x + 2; at x = -4: z = -10, relu(z) = 0, q = 40, h = 100
    # dy/dx = dh/dx + (1 + x) dq/dx + q = 2*z*3 + (1 + x)(3x + z) + q
    y, dx = sanity(Value)
    assert y == 100 + 40 + 40 * -4
    assert dx == 2 * -10 * 3 + (1 - 4) * (3 * -4 - 10) + 40


def test_micrograd_more_ops_against_its_published_numbers() -> None:
    g, da, db = more_ops(Value)
    assert g == pytest.approx(24.70408163265306, rel=1e-12)
    assert da == pytest.approx(138.83381924198252, rel=1e-12)
    assert db == pytest.approx(645.5772594752186, rel=1e-12)


def test_same_numbers_as_micrograd_itself() -> None:
    # micrograd comes with the dev extra; only a bare environment skips this
    micrograd = pytest.importorskip("micrograd.engine")
    MV = micrograd.Value
    assert sanity(Value) == pytest.approx(sanity(MV), rel=1e-15)
    assert more_ops(Value) == pytest.approx(more_ops(MV), rel=1e-13)
