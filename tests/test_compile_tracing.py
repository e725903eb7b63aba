"""Honest tracing: a Python decision on a traced Value's number is refused, by place."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import TraceError, Value


def where(fn: Callable[..., Any], marker: str) -> str:
    """``file:line`` of the line of ``fn``'s source containing ``marker``."""
    import inspect

    lines, start = inspect.getsourcelines(fn)
    for i, line in enumerate(lines):
        if marker in line:
            return f"{inspect.getsourcefile(fn)}:{start + i}"
    raise AssertionError(marker)


def branch_if(x: Any) -> Any:
    if x > 0:  # MARK
        return x * 2
    return x


def branch_bool(x: Any) -> Any:
    return x * 3 if x else x  # MARK


def to_float(x: Any) -> Any:
    return math.exp(float(x))  # MARK


def read_data(x: Any) -> Any:
    return x * x.data  # MARK


def builtin_max(x: Any) -> Any:
    return max(x, x * 2)  # MARK


def math_function(x: Any) -> Any:
    return x + math.sqrt(x)  # MARK


def less_equal(x: Any) -> Any:
    return x * 2 if x <= 1 else x  # MARK


def detach(x: Any) -> Any:
    return x * x.detach()  # MARK


@pytest.mark.parametrize("fn", [branch_if, branch_bool, to_float, read_data, builtin_max,
                                math_function, less_equal, detach])
def test_data_dependent_python_is_refused_with_its_place(fn: Callable[..., Any]) -> None:
    with pytest.raises(TraceError) as info:
        mg.compile(fn, 1.5)
    assert where(fn, "# MARK") in str(info.value)
    assert "traced Value" in str(info.value)


def test_a_closed_over_value_is_checked_too() -> None:
    w = Value(2.0, label="w")

    def f(x: Any) -> Any:
        return x * w if w.data > 0 else x  # MARK

    with pytest.raises(TraceError) as info:
        mg.compile(f, 1.0)
    assert where(f, "# MARK") in str(info.value)
    assert type(w) is Value  # restored after tracing


def test_no_grad_inside_the_traced_function_is_refused() -> None:
    def f(x: Any) -> Any:
        with mg.no_grad():
            scale = x * 2
        return x * scale

    with pytest.raises(TraceError, match="no_grad"):
        mg.compile(f, 1.0)


def test_tracing_leaves_no_trace() -> None:
    x = Value(1.0)
    c = mg.compile(lambda a: a * a + 1, x)
    assert type(x) is Value and type(c.graph) is Value
    # outside tracing, reading and branching are ordinary again
    y = x * 2
    assert type(y) is Value and y.data == 2.0 and bool(y) and y > 1
    assert re.match(r"Value\(data=2\.0", repr(y))


def test_a_refused_trace_restores_argument_values() -> None:
    x = Value(1.0)
    with pytest.raises(TraceError):
        mg.compile(branch_if, x)
    assert type(x) is Value
    assert x > 0  # an ordinary Value again
