"""The command line: ``python -m microgrannd <command> ...``.

``draw`` evaluates an expression on named inputs, runs backward, prints the
value and the gradients, and writes a picture of the graph::

    python -m microgrannd draw "sigmoid(x) * y" x=0.5 y=2 -o graph.svg
    python -m microgrannd draw "apple * n * tax" apple=100 n=2 tax=1.1 -o shop.png
    python -m microgrannd draw "sigmoid(x)" x=-1 --backward --upstream 3 -o back.svg
    python -m microgrannd draw "x * x + 1" x=3            # no -o: prints a text tree

The picture's format comes from the extension of ``-o`` (``.svg``, ``.png``;
``.dot`` needs no renderer).  An expression that starts with ``-`` must follow
``--`` (``draw -- "-x * y" x=1``), as with any option-like argument.

Expressions are parsed with :mod:`ast` and evaluated node by node; nothing is
ever passed to ``eval`` or ``exec``.  Accepted: numbers, variable names given
as ``name=value``, ``+ - * / **``, unary minus and calls of the library's
functions (:data:`FUNCTIONS`).  Anything else, an unknown name, input longer
than :data:`MAX_CHARS` characters or nested deeper than :data:`MAX_DEPTH`
gives a one-line error and exit status 2.  Without a renderer the ``.dot``
file is written, the error says how to get one, and the exit status is 1.

Each subcommand is one ``add_<name>_parser`` function plus one ``run_<name>``
function, registered in :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from microgrannd import functions
from microgrannd.draw import DEFAULT_MAX_NODES, GraphTooLargeError, draw
from microgrannd.engine import Value
from microgrannd.functions import apply
from microgrannd.ops import POW, RECIPROCAL, DomainError
from microgrannd.render import RendererNotFoundError, RenderError
from microgrannd.tree import tree

__all__ = ["FUNCTIONS", "MAX_CHARS", "MAX_DEPTH", "ExpressionError", "build_parser", "evaluate", "main"]

MAX_CHARS = 1000
MAX_DEPTH = 200

# name -> (function, number of Value arguments, number of optional number arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "exp": (functions.exp, 1, 0),
    "log": (functions.log, 1, 0),
    "reciprocal": (functions.reciprocal, 1, 0),
    "relu": (functions.relu, 1, 0),
    "tanh": (functions.tanh, 1, 0),
    "softplus": (functions.softplus, 1, 0),
    "sigmoid": (functions.sigmoid, 1, 0),
    "sigmoid_fused": (functions.sigmoid_fused, 1, 0),
    "leaky_relu": (functions.leaky_relu, 1, 1),
}

Number = float | Value


class ExpressionError(ValueError):
    """An expression the command line refuses or cannot evaluate (one line of text)."""


# --------------------------------------------------------------------------
# Expressions


def _check(tree: ast.Expression, names: dict[str, Value]) -> None:
    """Refuse every syntax outside the small language, and deep nesting (iteratively)."""
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ExpressionError(f"only numbers are allowed as constants, not {value!r}"[:200])
            try:
                finite = math.isfinite(float(value))
            except OverflowError:
                finite = False
            if not finite:
                raise ExpressionError("numbers must be finite floats")
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise ExpressionError(f"{node.id} is a function: call it, as in {node.id}(x)")
            if node.id not in names:
                raise ExpressionError(f"unknown name {node.id!r}: give it a value, as in {node.id}=1.5")
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Pow):
                raise ExpressionError(f"operator {type(node.op).__name__} is not allowed (use + - * / **)")
            stack += [(node.left, depth + 1), (node.right, depth + 1)]
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub):
                raise ExpressionError(f"unary {type(node.op).__name__} is not allowed (only minus)")
            stack.append((node.operand, depth + 1))
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                known = ", ".join(FUNCTIONS)
                raise ExpressionError(f"only these functions can be called: {known}")
            if node.keywords:
                raise ExpressionError(f"{node.func.id}() takes no keyword arguments")
            _, needed, optional = FUNCTIONS[node.func.id]
            if not needed <= len(node.args) <= needed + optional:
                raise ExpressionError(f"{node.func.id}() takes {needed} to {needed + optional} arguments"
                                      if optional else f"{node.func.id}() takes {needed} argument(s)")
            stack += [(a, depth + 1) for a in node.args]
        else:
            raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")


def _binary(op: ast.operator, a: Number, b: Number) -> Number:
    """``a op b`` as the library computes it; two plain numbers stay a plain number."""
    constants = not (isinstance(a, Value) or isinstance(b, Value))
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    # constants fold with the same primitives (a pole or a complex power is a DomainError)
    if isinstance(op, ast.Div):
        return a * float(apply(RECIPROCAL, b)) if constants else a / b
    return float(apply(POW, a, b)) if constants else a**b


def evaluate(text: str, names: dict[str, Value]) -> Value:
    """Parse ``text`` and build its graph on the Values in ``names``; return the output.

    Raises :class:`ExpressionError` (one line) for anything outside the
    language, input that is too large, or a value outside a function's domain.
    """
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"expression longer than {MAX_CHARS} characters")
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal": the error says enough
            warnings.simplefilter("ignore")
            parsed = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"not a valid expression: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise ExpressionError("expression too deeply nested or too large") from None
    _check(parsed, names)
    # post-order evaluation with an explicit stack
    results: list[Number] = []
    stack: list[tuple[ast.AST, bool]] = [(parsed.body, False)]
    try:
        while stack:
            node, ready = stack.pop()
            if isinstance(node, ast.Constant):
                results.append(float(node.value))  # type: ignore[arg-type]  # checked: int or float
            elif isinstance(node, ast.Name):
                results.append(names[node.id])
            elif not ready:
                stack.append((node, True))
                children = _children(node)
                stack += [(c, False) for c in reversed(children)]
            elif isinstance(node, ast.BinOp):
                b, a = results.pop(), results.pop()
                results.append(_binary(node.op, a, b))
            elif isinstance(node, ast.UnaryOp):
                results.append(-results.pop())
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id
                args = results[len(results) - len(node.args):]
                del results[len(results) - len(node.args):]
                if any(isinstance(a, Value) for a in args[1:]):
                    raise ExpressionError(f"{name}(): only the first argument may use variables")
                results.append(FUNCTIONS[name][0](*args))
    except (DomainError, ZeroDivisionError, OverflowError) as e:
        raise ExpressionError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    out = results.pop()
    return out if isinstance(out, Value) else Value(out, requires_grad=False)


def _children(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        return list(node.args)
    return []


def parse_bindings(items: Sequence[str]) -> dict[str, Value]:
    """``["x=0.5", "y=2"]`` -> ``{"x": Value(0.5, "x"), ...}``; one-line errors."""
    names: dict[str, Value] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ExpressionError(f"expected name=value, not {item!r}"[:200])
        if name in FUNCTIONS:
            raise ExpressionError(f"{name} is a function name; choose another variable name")
        if name in names:
            raise ExpressionError(f"{name} is given twice")
        try:
            value = float(text)
        except ValueError:
            raise ExpressionError(f"{name}: {text!r} is not a number"[:200]) from None
        if not math.isfinite(value):
            raise ExpressionError(f"{name}: the value must be finite")
        names[name] = Value(value, name)
    return names


# --------------------------------------------------------------------------
# Subcommands


def add_draw_parser(sub: Any) -> None:
    """The ``draw`` subcommand's arguments."""
    p = sub.add_parser(
        "draw",
        help="evaluate an expression, print its gradients, draw its graph",
        description="Evaluate EXPR on the given inputs, run backward, print the gradients "
        "and draw the graph (or print it as a text tree when -o is not given).",
        epilog='example: python -m microgrannd draw "sigmoid(x) * y" x=0.5 y=2 -o graph.svg  '
        '(an expression starting with - goes after --: draw -- "-x" x=1)',
    )
    p.add_argument("expr", metavar="EXPR", help='e.g. "sigmoid(x) * y"')
    p.add_argument("bindings", metavar="NAME=VALUE", nargs="*", help="input values, e.g. x=0.5 y=2")
    p.add_argument("-o", "--output", metavar="FILE", help="picture to write (.svg, .png, .dot, ...)")
    p.add_argument("--backward", action="store_true", help="label edges with local derivatives and gradients")
    p.add_argument("--upstream", type=float, default=1.0, metavar="G", help="seed gradient (default 1)")
    p.add_argument("--collapse", action="store_true", help="draw every composite call as a single node")
    p.add_argument("--collapse-only", action="append", default=[], metavar="NAME",
                   help="draw calls of composite NAME as single nodes (repeatable)")
    p.add_argument("--direction", choices=["LR", "TB"], default="LR", help="layout direction")
    p.add_argument("--legend", action="store_true", help="add a legend")
    p.add_argument("--max-nodes", type=int, default=DEFAULT_MAX_NODES, metavar="N", help="node limit")
    p.add_argument("--tree", action="store_true", help="also print the graph as a text tree")
    p.set_defaults(run=run_draw)


def run_draw(args: argparse.Namespace) -> int:
    """Evaluate, differentiate, report, draw."""
    names = parse_bindings(args.bindings)
    out = evaluate(args.expr, names)
    out.backward(args.upstream)
    print(f"value = {out.data!r}")
    for name, v in names.items():
        print(f"d/d{name} = {v.grad!r}")
    if args.tree or not args.output:
        print(tree(out))
    if args.output:
        collapse = True if args.collapse else args.collapse_only
        picture = draw(out, rankdir=args.direction, collapse=collapse, max_nodes=args.max_nodes,
                       legend=args.legend, backward=args.backward, upstream=args.upstream)
        print(f"wrote {picture.render(args.output)}")
    return 0


def add_demo_parser(sub: Any) -> None:
    """The ``demo`` subcommand: list the demos, or run one with its own arguments."""
    p = sub.add_parser(
        "demo",
        help="list the demos, or run one: demo NAME [ARGS...]",
        description="Without NAME, list the demos (from the demos/ folder of a checkout); "
        "with NAME, run that demo, passing ARGS on (e.g. --full, --help).",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the demo to run")
    p.add_argument("demo_args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the demo")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """List or run a demo (see :mod:`microgrannd.demo_runner`)."""
    from microgrannd import demo_runner

    return demo_runner.main([args.name, *args.demo_args] if args.name else [])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m microgrannd", description="microgrannd from the shell")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_draw_parser(sub)
    add_demo_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    0: done; 2: refused input (bad expression, bad binding, graph over the
    node limit); 1: the picture could not be written (no renderer: the
    ``.dot`` file is written instead; a renderer failure; a file error).
    """
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except (ExpressionError, GraphTooLargeError) as e:  # the input is refused
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (RendererNotFoundError, RenderError, OSError) as e:  # the machine cannot finish the job
        print(f"error: {e}", file=sys.stderr)
        return 1
    return status
