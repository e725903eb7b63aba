"""The command line: ``microgrannd <command> ...`` (or ``python -m microgrannd``).

``draw`` evaluates an expression on named inputs, runs backward, prints the
value and the gradients, and writes a picture of the graph::

    microgrannd draw "sigmoid(x) * y" x=0.5 y=2 -o graph.svg
    microgrannd draw "apple * n * tax" apple=100 n=2 tax=1.1 -o shop.png
    microgrannd draw "sigmoid(x)" x=-1 --backward --upstream 3 -o back.svg
    microgrannd draw "x * x + 1" x=3            # no -o: prints a text tree
    microgrannd draw -- "-x * y" x=1 y=3 -o g.dot

``explore`` writes the same graph as an interactive page that steps through
forward and backward (:func:`microgrannd.explore`), and ``step`` prints that
walk-through, one step per line, with the page's arithmetic::

    microgrannd explore "sigmoid(x) * y" x=0.5 y=2 -o graph.html --upstream 3
    microgrannd step "sigmoid(x)" x=-1 --upstream 3

The picture's format comes from the extension of ``-o`` (``.svg``, ``.png``;
``.dot`` needs no renderer).  ``--`` makes the argument right after it an
argument even if it starts with ``-``: an expression such as ``-x * y``
follows ``--``, and options may still come after it.  ``microgrannd
--version`` prints the version.

Expressions are parsed with :mod:`ast` and evaluated node by node; nothing is
ever passed to ``eval`` or ``exec``.  Accepted: numbers, variable names given
as ``name=value``, ``+ - * / **``, unary minus and calls of the library's
functions (:data:`FUNCTIONS`).  Names are compared after NFKC normalisation,
as Python compares identifiers (``ｘ`` is ``x``).

Every refused input gives one line on standard error, ``error: ...``, and
exit status 2, before anything is printed or written: an expression outside
the language, an unknown name, input longer than :data:`MAX_CHARS` characters
or nested deeper than :data:`MAX_DEPTH`, a value outside a function's domain,
a bad option (``--max-nodes`` below 1, a non-finite ``--upstream``, an ``-o``
without an extension or naming a folder) and a graph over the node limit.
Exit status 1 means the picture could not be written: without a renderer
the ``.dot`` file is written and the error says how to get one; a renderer
failure or a file that cannot be written is one line too.

Each subcommand is one ``add_<name>_parser`` function plus one ``run_<name>``
function, registered in :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sys
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from microgrannd import __version__, functions
from microgrannd.draw import DEFAULT_MAX_NODES, GraphTooLargeError, draw
from microgrannd.engine import Value
from microgrannd.explore.steps import DEFAULT_MAX_NODES as EXPLORE_MAX_NODES
from microgrannd.functions import apply
from microgrannd.ops import POW, RECIPROCAL, DomainError
from microgrannd.render import RendererNotFoundError, RenderError
from microgrannd.tree import tree

__all__ = [
    "FUNCTIONS",
    "MAX_CHARS",
    "MAX_DEPTH",
    "ExpressionError",
    "OptionError",
    "build_parser",
    "evaluate",
    "main",
]

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


class OptionError(ValueError):
    """An option value the command line refuses (one line of text), such as ``--max-nodes 0``."""


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
    """``["x=0.5", "y=2"]`` -> ``{"x": Value(0.5, "x"), ...}``; one-line errors.

    Names are NFKC-normalised, as Python normalises the identifiers of the
    expression, so ``ｘ=1`` binds the ``ｘ`` (that is, ``x``) of an expression.
    """
    names: dict[str, Value] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = unicodedata.normalize("NFKC", name.strip())
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
        epilog='example: microgrannd draw "sigmoid(x) * y" x=0.5 y=2 -o graph.svg  '
        '(an expression starting with - goes right after --: draw -- "-x" x=1 -o g.dot)',
    )
    p.add_argument("expr", metavar="EXPR", help='e.g. "sigmoid(x) * y"')
    p.add_argument("bindings", metavar="NAME=VALUE", nargs="*", default=[], help="input values, e.g. x=0.5 y=2")
    p.add_argument("-o", "--output", metavar="FILE", help="picture to write (.svg, .png, .dot, ...)")
    p.add_argument("--backward", action="store_true", help="label edges with local derivatives and gradients")
    p.add_argument("--upstream", type=float, default=1.0, metavar="G", help="seed gradient (default 1)")
    p.add_argument("--collapse", action="store_true", help="draw every composite call as a single node")
    p.add_argument("--collapse-only", action="append", default=[], metavar="NAME",
                   help="draw calls of composite NAME as single nodes (repeatable)")
    p.add_argument("--direction", choices=["LR", "TB"], default="LR", help="layout direction")
    p.add_argument("--legend", action="store_true", help="add a legend")
    p.add_argument("--max-nodes", type=int, default=DEFAULT_MAX_NODES, metavar="N",
                   help=f"the most values to draw (default {DEFAULT_MAX_NODES})")
    p.add_argument("--tree", action="store_true", help="also print the graph as a text tree")
    p.set_defaults(run=run_draw)


def check_output(path: str) -> None:
    """Refuse an ``-o`` the picture cannot be written to by name: no extension, or a folder."""
    target = Path(path)
    if path.endswith(("/", os.sep)) or target.is_dir():
        raise OptionError(f"-o {path!r} is a folder: give a file name such as graph.svg"[:300])
    if not target.suffix:
        raise OptionError(f"-o {path!r} has no extension to tell the format: "
                          "give a file name ending in .svg, .png or .dot"[:300])


def _check_draw_options(args: argparse.Namespace) -> None:
    if args.max_nodes < 1:
        raise OptionError(f"--max-nodes must be 1 or more, not {args.max_nodes}")
    if not math.isfinite(args.upstream):
        raise OptionError(f"--upstream must be a finite number, not {args.upstream}")
    if args.output is not None:
        check_output(args.output)


def _too_large(e: GraphTooLargeError, collapsed: bool) -> OptionError:
    """The drawing's size error, with the command line's options as advice."""
    advice = "" if collapsed else "draw composite calls as single nodes with --collapse, or "
    return OptionError(f"the graph has {e.count} values to draw, more than --max-nodes {e.max_nodes}; "
                       f"{advice}raise the limit: --max-nodes {e.count}")


def run_draw(args: argparse.Namespace) -> int:
    """Check the options, evaluate, differentiate, draw, then report and write."""
    _check_draw_options(args)
    names = parse_bindings(args.bindings)
    out = evaluate(args.expr, names)
    if out.requires_grad:  # an expression of constants alone has no gradient to compute
        out.backward(args.upstream)
    picture = None
    if args.output:
        collapse = True if args.collapse else args.collapse_only
        try:
            picture = draw(out, rankdir=args.direction, collapse=collapse, max_nodes=args.max_nodes,
                           legend=args.legend, backward=args.backward, upstream=args.upstream)
        except GraphTooLargeError as e:
            raise _too_large(e, collapse is True) from None
    print(f"value = {out.data!r}")
    for name, v in names.items():
        print(f"d/d{name} = {v.grad!r}")
    if args.tree or not args.output:
        print(tree(out))
    if picture is not None:
        try:
            written = picture.render(args.output)
        except OSError as e:
            raise OSError(f"cannot write {args.output}: {e.strerror or e}") from None
        print(f"wrote {written}")
    return 0


def _add_explore_options(p: argparse.ArgumentParser) -> None:
    """The options ``explore`` and ``step`` share: the expression, inputs, seed, collapse and limit."""
    p.add_argument("expr", metavar="EXPR", help='e.g. "sigmoid(x) * y"')
    p.add_argument("bindings", metavar="NAME=VALUE", nargs="*", default=[], help="input values, e.g. x=0.5 y=2")
    p.add_argument("--upstream", type=float, default=1.0, metavar="G", help="seed gradient (default 1)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--collapse", action="store_true", help="start with every composite call collapsed")
    group.add_argument("--expand", action="store_true", help="start with every composite call expanded")
    group.add_argument("--collapse-only", action="append", default=[], metavar="NAME",
                       help="start with the calls of composite NAME collapsed (repeatable)")
    p.add_argument("--max-nodes", type=int, default=EXPLORE_MAX_NODES, metavar="N",
                   help=f"the most nodes the graph may have (default {EXPLORE_MAX_NODES})")


def add_explore_parser(sub: Any) -> None:
    """The ``explore`` subcommand's arguments."""
    p = sub.add_parser(
        "explore",
        help="write an interactive page that steps through forward and backward",
        description="Evaluate EXPR on the given inputs and write one self-contained HTML page that steps "
        "through the forward pass and the backward pass (arrow keys, Home/End, space), "
        "with composite calls to collapse and expand.",
        epilog='example: microgrannd explore "sigmoid(x) * y" x=0.5 y=2 -o graph.html --upstream 3',
    )
    _add_explore_options(p)
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the page to write (.html)")
    p.set_defaults(run=run_explore)


def add_step_parser(sub: Any) -> None:
    """The ``step`` subcommand's arguments."""
    p = sub.add_parser(
        "step",
        help="print the forward and backward pass one step per line",
        description="Evaluate EXPR on the given inputs and print the walk-through that the explore page "
        "shows: forward one node at a time, the seed, then backward one (node, parent) edge at a time "
        "with the chain rule's numbers and running sums.",
        epilog='example: microgrannd step "sigmoid(x)" x=-1 --upstream 3',
    )
    _add_explore_options(p)
    p.set_defaults(run=run_step)


def _explorer(args: argparse.Namespace) -> Any:
    """Check the shared options, evaluate, and build the explorer."""
    from microgrannd.explore import explore

    if args.max_nodes < 1:
        raise OptionError(f"--max-nodes must be 1 or more, not {args.max_nodes}")
    if not math.isfinite(args.upstream):
        raise OptionError(f"--upstream must be a finite number, not {args.upstream}")
    out = evaluate(args.expr, parse_bindings(args.bindings))
    collapse: bool | list[str] | None = True if args.collapse else False if args.expand else args.collapse_only or None
    try:
        return explore(out, upstream=args.upstream, collapse=collapse, max_nodes=args.max_nodes)
    except GraphTooLargeError as e:
        raise OptionError(f"the graph has more than --max-nodes {e.max_nodes} nodes; explore a smaller "
                          f"expression or raise the limit: --max-nodes N") from None


def run_explore(args: argparse.Namespace) -> int:
    """Write the page."""
    target = Path(args.output)
    if args.output.endswith(("/", os.sep)) or target.is_dir():
        raise OptionError(f"-o {args.output!r} is a folder: give a file name such as graph.html"[:300])
    if target.suffix.lower() not in (".html", ".htm"):
        raise OptionError(f"-o {args.output!r} must end in .html"[:300])
    explorer = _explorer(args)
    try:
        written = explorer.save(target)
    except OSError as e:
        raise OSError(f"cannot write {args.output}: {e.strerror or e}") from None
    print(f"value = {explorer.graph.root.value.data!r}")
    print(f"wrote {written} ({len(explorer.steps())} steps; open it in a browser)")
    return 0


def run_step(args: argparse.Namespace) -> int:
    """Print the walk-through, one step per line."""
    for line in _explorer(args).steps():
        print(line)
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


class _Parser(argparse.ArgumentParser):
    """An argument parser whose refusals are one line: ``error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Refuse the arguments in one line (the usage is one ``--help`` away)."""
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _prog() -> str:
    """How the command was called: ``microgrannd`` or ``python -m microgrannd``."""
    return "python -m microgrannd" if Path(sys.argv[0]).name == "__main__.py" else "microgrannd"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(prog=_prog(), description="microgrannd from the shell")
    parser.add_argument("--version", action="version", version=f"microgrannd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_draw_parser(sub)
    add_explore_parser(sub)
    add_step_parser(sub)
    add_demo_parser(sub)
    return parser


def _protect(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """For ``draw``, ``explore`` and ``step``: drop each ``--`` and hide the argument after it behind a placeholder.

    So ``draw -- "-x * y" x=1 -o g.dot`` reads ``-x * y`` as the expression
    and still reads ``-o`` as an option.
    """
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if command is None or argv[command] not in ("draw", "explore", "step"):
        return argv, {}
    out = argv[: command + 1]
    hidden: dict[str, str] = {}
    rest = iter(argv[command + 1:])
    for a in rest:
        if a == "--":
            following = next(rest, None)
            if following is None:
                break
            key = f"\0{len(hidden)}"
            hidden[key] = following
            out.append(key)
        else:
            out.append(a)
    return out, hidden


def _restore(args: argparse.Namespace, hidden: dict[str, str]) -> None:
    """Put the arguments :func:`_protect` hid back in their places."""
    for name, value in vars(args).items():
        if isinstance(value, str) and value in hidden:
            setattr(args, name, hidden[value])
        elif isinstance(value, list):
            setattr(args, name, [hidden.get(v, v) if isinstance(v, str) else v for v in value])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    0: done (and ``--help``, ``--version``); 2: refused input (bad
    arguments, a bad expression or binding, a bad option value, a graph over
    the node limit), one line on standard error; 1: the picture could not be
    written (no renderer: the ``.dot`` file is written instead; a renderer
    failure; a file error), one line too.
    """
    raw, hidden = _protect(list(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser().parse_args(raw)
    except SystemExit as e:  # --help, --version, or refused arguments (already reported)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    _restore(args, hidden)
    try:
        status: int = args.run(args)
    except (ExpressionError, OptionError, GraphTooLargeError) as e:  # the input is refused
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (RendererNotFoundError, RenderError, OSError) as e:  # the machine cannot finish the job
        print(f"error: {e}", file=sys.stderr)
        return 1
    return status
