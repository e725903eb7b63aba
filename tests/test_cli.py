"""The command line: the draw subcommand, and hostile input to its expression parser."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest
from _draw_support import need_renderer
from hypothesis import given, settings
from hypothesis import strategies as st

from microgrannd import Value
from microgrannd.cli import FUNCTIONS, MAX_CHARS, MAX_DEPTH, ExpressionError, evaluate, main, parse_bindings

ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def gradients_printed(out: str) -> dict[str, float]:
    return {
        line.split(" = ")[0][3:]: float(line.split(" = ")[1])
        for line in out.splitlines()
        if line.startswith("d/d")
    }


# --- happy paths


def test_draw_sigmoid_times_y_writes_svg_and_prints_gradients(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    need_renderer()
    target = tmp_path / "graph.svg"
    status, out, _ = run(capsys, "draw", "sigmoid(x) * y", "x=0.5", "y=2", "-o", str(target))
    assert status == 0
    s = 1.0 / (1.0 + math.exp(-0.5))
    grads = gradients_printed(out)
    assert grads["x"] == pytest.approx(2.0 * s * (1.0 - s), rel=1e-12)
    assert grads["y"] == pytest.approx(s, rel=1e-12)
    svg = target.read_text(encoding="utf-8")
    assert "<svg" in svg and ">sigmoid</text>" in svg


def test_shopping_numbers_are_exact(capsys: pytest.CaptureFixture[str]) -> None:
    # the shopping example, evaluated left to right as written
    status, out, _ = run(capsys, "draw", "apple * n * tax", "apple=100", "n=2", "tax=1.1")
    assert status == 0
    assert "value = 220.00000000000003" in out
    assert gradients_printed(out) == {"apple": 2.2, "n": 110.00000000000001, "tax": 200.0}
    assert "apple = 100  grad 2.2  (leaf)" in out  # no -o: the text tree is printed


def test_dot_output_and_backward_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "back.dot"
    status, out, _ = run(
        capsys, "draw", "sigmoid(x)", "x=-1", "--backward", "--upstream", "3", "--collapse", "-o", str(target)
    )
    assert status == 0
    assert gradients_printed(out)["x"] == pytest.approx(0.5898358, abs=1e-7)  # the seed's dx at x = -1
    source = target.read_text(encoding="utf-8")
    assert "dir=back" in source and 'label="local 0.1966\\ngrad 0.5898"' in source


def test_python_dash_m(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "microgrannd", "draw", "x * x", "x=3", "-o", str(tmp_path / "g.dot")],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert "d/dx = 6.0" in done.stdout
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")


def test_constants_fold_with_the_library_rules() -> None:
    x = Value(2.0, "x")
    y = evaluate("x * (2 ** 3 - 6 / 4)", {"x": x})
    y.backward()
    assert y.data == 13.0 and x.grad == 6.5
    assert evaluate("3", {}).data == 3.0


# --- hostile input

HOSTILE = [
    "__import__('os').system('echo hi')",
    "x.data",
    "x.__class__",
    "x[0]",
    "lambda: 1",
    "open('f')",
    "eval('1')",
    "z + 1",
    "exp",
    "exp(x, x)",
    "exp(x=1)",
    "leaky_relu(x, x)",
    "'text'",
    "b'bytes'",
    "1j",
    "True",
    "None",
    "x if x else 1",
    "x @ x",
    "x % 2",
    "x // 2",
    "+x",
    "~x",
    "not x",
    "x < 1",
    "[x]",
    "(x, x)",
    "{x: 1}",
    "f'{x}'",
    "x := 1",
    "1e999",
    "log(x - 1)",
    "1 / 0",
    "(-8) ** 0.5",
    "x ** x * 0 + (0 - x) ** x",
    "",
    "x +",
    "x\x00",
    "-" * (MAX_DEPTH + 1) + "x",
    "(" * 300 + "x" + ")" * 300,
    "x + " * 300 + "x",
    "1" * (MAX_CHARS + 1),
    "import os",
    "1if x else 2",
]


@pytest.mark.parametrize("expr", HOSTILE)
def test_hostile_input_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str], expr: str) -> None:
    status, out, err = run(capsys, "draw", "--", expr, "x=1")
    assert status == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("binding", ["x", "x=abc", "1x=2", "x=nan", "x=inf", "exp=1"])
def test_bad_bindings(capsys: pytest.CaptureFixture[str], binding: str) -> None:
    status, _, err = run(capsys, "draw", "x", binding)
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_a_name_given_twice() -> None:
    with pytest.raises(ExpressionError, match="twice"):
        parse_bindings(["x=1", "x=2"])


def test_depth_limit_counts_tree_levels() -> None:
    names = {"x": Value(1.0, "x")}
    ok = "-" * (MAX_DEPTH - 1) + "x"
    assert evaluate(ok, names).data == (-1.0) ** (MAX_DEPTH - 1)
    with pytest.raises(ExpressionError, match="nested"):
        evaluate("-" + ok, names)


def test_the_graph_limit_is_a_clean_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    expr = "x" + " * x" * 150
    status, _, err = run(capsys, "draw", expr, "x=1", "-o", str(tmp_path / "g.dot"), "--max-nodes", "50")
    assert status == 2 and "--max-nodes 151" in err and "max_nodes=" not in err and err.count("\n") == 1


# --- arbitrary text: a result or the clean error, nothing else

TOKENS = [*FUNCTIONS, "x", "y", "1", "2.5", "0", "1e308", "-", "+", "*", "/", "**", "(", ")", ",", " ",
          ".", "[", "]", "lambda", ":", "__class__", "'", "%", "=", "if", "else"]


def _evaluate_or_refuse(text: str) -> None:
    names = {"x": Value(0.5, "x"), "y": Value(-2.0, "y")}
    try:
        out = evaluate(text, names)
    except ExpressionError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(out, Value)
    if out.requires_grad:  # an expression of constants alone has no gradient
        out.backward()


@settings(deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    _evaluate_or_refuse(text)


@settings(deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map("".join))
def test_arbitrary_token_soup(text: str) -> None:
    _evaluate_or_refuse(text)


def test_collapse_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "g.dot"
    expr = "sigmoid(x) - leaky_relu(x)"
    assert run(capsys, "draw", expr, "x=0.5", "--collapse", "-o", str(target))[0] == 0
    assert "subgraph cluster" not in target.read_text(encoding="utf-8")
    assert run(capsys, "draw", expr, "x=0.5", "--collapse-only", "sigmoid", "-o", str(target))[0] == 0
    source = target.read_text(encoding="utf-8")
    assert 'label="leaky_relu"' in source and "c0 [label=sigmoid" in source


def test_the_command_line_never_evaluates_code() -> None:
    source = (ROOT / "microgrannd" / "cli.py").read_text(encoding="utf-8")
    called = {
        node.func.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}


def test_without_a_renderer_the_dot_file_is_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from microgrannd import render

    monkeypatch.delenv(render.ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(render, "_scripts_dir", lambda: str(tmp_path))
    status, out, err = run(capsys, "draw", "x * 2", "x=1", "-o", str(tmp_path / "g.svg"))
    assert status == 1
    assert "d/dx = 2.0" in out
    assert err.count("\n") == 1 and "pip install graphviz-pure" in err and 'pip install ".[render]"' in err
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")


def test_demo_subcommand_lists_and_runs_demos(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo"]) == 0
    listing = capsys.readouterr().out
    for name in ("shopping", "relu_sigmoid", "gradient_check", "vanishing_gradients", "delta_rule_xor",
                 "digits", "moons"):
        assert f"  {name} " in listing
    assert main(["demo", "shopping", "--no-plots", "--out", str(tmp_path)]) == 0
    assert "220.00000000000003" in capsys.readouterr().out
    assert main(["demo", "no_such_demo"]) == 2
