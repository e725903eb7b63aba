"""The text tree: ops, data, grads, composites, shared nodes, any depth."""

from __future__ import annotations

import microgrannd as mg
from microgrannd import Value
from microgrannd.tree import tree


def test_sigmoid_tree_before_and_after_backward() -> None:
    x = Value(-1.0, "x")
    y = mg.sigmoid(x)
    lines = tree(y).splitlines()
    assert len(lines) == 7  # four ops, the input, two constants
    assert sum("in sigmoid#1" in line for line in lines) == 4
    assert sum("(constant)" in line for line in lines) == 2
    assert all("grad ?" in line for line in lines if "(constant)" not in line)
    symbols = [line.split("= ")[-1].split()[0] for line in lines if "in sigmoid" in line]
    assert symbols == ["1/x", "+", "exp", "×"]
    y.backward(3.0)
    after = tree(y)
    assert "grad ?" not in after
    assert f"x = -1  grad {x.grad:.4g}  (leaf)" in after
    assert after.splitlines()[0].startswith(f"{y.data:.4g}  grad 3  = 1/x")


def test_shared_nodes_are_shown_once_then_referenced() -> None:
    x = Value(2.0, "x")
    h = x * 3.0
    y = h * h + x
    text = tree(y)
    assert text.count("= ×  [#") == 1  # h printed in full once, tagged
    assert text.count("[#1] (shown above)") == 1  # and referenced once
    x_lines = [line for line in text.splitlines() if "x = 2" in line]
    assert len(x_lines) == 2 and "(leaf)" in x_lines[0] and "(shown above)" in x_lines[1]


def test_x_times_x_lists_both_slots() -> None:
    x = Value(3.0, "x")
    lines = tree(x * x).splitlines()
    assert len(lines) == 3
    assert "[#1]" in lines[1] and "(shown above)" in lines[2]


def test_pow_folds_its_exponent() -> None:
    x = Value(3.0, "x")
    lines = tree(x**2).splitlines()
    assert lines[0].startswith("9  grad ?  = ^2") and len(lines) == 2


def test_nested_composites_are_marked_with_their_path() -> None:
    @mg.composite("outer")
    def outer(a: Value) -> Value:
        return mg.sigmoid(a) * 2.0

    text = tree(outer(Value(0.1, "a")))
    assert "in outer#1/sigmoid#2" in text and text.splitlines()[0].endswith("in outer#1")


def test_grads_false_and_ascii() -> None:
    x = Value(1.0, "x")
    y = x.tanh() + x
    assert "grad" not in tree(y, grads=False)
    plain = tree(y, ascii=True)
    assert plain.isascii() and "`-- " in plain


def test_a_deep_chain_prints_in_linear_space() -> None:
    n = 20_000
    x = Value(0.5, "x")
    y = x
    for _ in range(n):
        y = y.tanh()
    text = tree(y, max_indent=10, max_nodes=None)
    lines = text.splitlines()
    assert len(lines) == n + 1
    assert lines[-1].startswith(" " * 40 + f"[depth {n}] x = 0.5")
    assert len(text) < 120 * (n + 1)
