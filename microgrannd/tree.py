"""The graph as an indented text tree: ``print(mg.tree(y))``.

Each line is one node: its label (if any), data, grad, the operation that
made it and the composite call it belongs to.  Children are the parent slots
in order (``x * x`` lists ``x`` twice).  A node used more than once is shown
in full the first time, tagged ``[#k]``, and afterwards as a one-line
reference to that tag, so shared sub-graphs are printed once.

The result is a :class:`TextTree`, a ``str`` that also displays as the
tree: the last line of a notebook cell, or ``repr``, shows the lines
themselves rather than a quoted string full of ``\\n``.

The walk is iterative and the indentation stops growing after
``max_indent`` levels (deeper lines carry their depth instead).  At most
``max_nodes`` lines are printed (default 1000): a bigger graph ends with a
line that says so and how to see more, and costs no more than those lines to
print, so ``tree`` of a million-node chain returns at once.

Example, for ``y = sigmoid(x)`` at ``x = -1`` before ``backward()``::

    0.2689  grad ?  = 1/x  in sigmoid#1
    └── 3.718  grad ?  = +  in sigmoid#1
        ├── 1  (constant)
        └── 2.718  grad ?  = exp  in sigmoid#1
            └── 1  grad ?  = ×  in sigmoid#1
                ├── x = -1  grad ?  (leaf)
                └── -1  (constant)
"""

from __future__ import annotations

from typing import Any

from microgrannd._view import (
    Formatter,
    drawn_slots,
    formatter,
    grad_float,
    grads_computed,
    is_constant,
    op_symbol,
)
from microgrannd.engine import Value

__all__ = ["DEFAULT_MAX_LINES", "TextTree", "tree"]

DEFAULT_MAX_LINES = 1000

UNICODE = ("├── ", "└── ", "│   ", "    ")
ASCII = ("|-- ", "`-- ", "|   ", "    ")


class TextTree(str):
    """The text of :func:`tree`: a ``str`` in every way, shown as its lines.

    ``repr`` is the text itself, so an interactive session or a notebook cell
    displays the tree rather than a quoted string; ``print`` and every string
    method work as for any ``str``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return str.__str__(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython's display: the lines, as they are."""
        for k, line in enumerate(str.__str__(self).split("\n")):
            if k:
                p.break_()
            p.text(line)


def tree(
    root: Value,
    *,
    fmt: str | Formatter = ".4g",
    grads: bool | str = "auto",
    ascii: bool = False,
    max_indent: int = 40,
    max_nodes: int | None = DEFAULT_MAX_LINES,
) -> TextTree:
    """Return the graph under ``root`` as an indented text tree (a :class:`TextTree`, a ``str``).

    Args:
        root: the output node.
        fmt: a format spec for numbers (default ``".4g"``) or a function float -> str.
        grads: as in :func:`~microgrannd.draw`: ``"auto"`` shows ``grad ?``
            until a backward pass has reached ``root``, ``True`` always shows
            the grad fields, ``False`` hides them.
        ascii: draw the branches with ASCII characters only.
        max_indent: levels of indentation before lines show their depth instead.
        max_nodes: the most lines (one node each) to print; a bigger tree is
            cut there and ends with a line saying so.  ``None`` prints it all.
    """
    if not isinstance(root, Value):
        raise TypeError(f"tree() needs a Value, not {type(root).__name__}")
    if grads not in (True, False, "auto"):
        raise ValueError(f"grads must be True, False or 'auto', not {grads!r}")
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"max_nodes must be a positive int or None, not {max_nodes!r}")
    f = formatter(fmt)
    computed = grads is True or (grads == "auto" and grads_computed(root))
    show_grads = grads is not False
    tee, last, bar, blank = ASCII if ascii else UNICODE

    # first the lines' nodes and prefixes, as far as the limit: a node used more than once is
    # printed in full the first time, then referenced
    entries: list[tuple[Value, str, str, int]] = []  # node, prefix of its line, of its children's, depth
    expanded: set[Value] = set()
    stack: list[tuple[Value, str, str, int]] = [(root, "", "", 0)]
    while stack and (max_nodes is None or len(entries) < max_nodes):
        v, head, rest, depth = entry = stack.pop()
        entries.append(entry)
        if v in expanded:
            continue
        expanded.add(v)
        slots = drawn_slots(v)
        grow = depth < max_indent
        for k in reversed(range(len(slots))):
            is_last = k == len(slots) - 1
            child_head = rest + (last if is_last else tee) if grow else rest
            child_rest = rest + (blank if is_last else bar) if grow else rest
            stack.append((v.parents[slots[k]], child_head, child_rest, depth + 1))
    uses: dict[Value, int] = {}
    for v, *_ in entries:
        uses[v] = uses.get(v, 0) + 1
    tags: dict[Value, int] = {}
    call_numbers: dict[int, int] = {}

    def describe(v: Value) -> str:
        name = f"{v.label} = " if v.label else ""
        if is_constant(v):
            return f"{name}{f(v.data)}  (constant)"
        text = f"{name}{f(v.data)}"
        if show_grads:
            text += f"  grad {f(grad_float(v.grad))}" if computed else "  grad ?"
        text += f"  = {op_symbol(v, f)}" if v.parents else "  (leaf)"
        if v.scope is not None:
            calls = []
            for s in v.scope.path():
                number = call_numbers.setdefault(s.id, len(call_numbers) + 1)
                calls.append(f"{s.name}#{number}")
            text += "  in " + "/".join(calls)
        return text

    lines: list[str] = []
    for v, head, _, depth in entries:
        marker = f"[depth {depth}] " if depth > max_indent else ""
        if v in tags:
            shown = f"{v.label} = {f(v.data)}" if v.label else f(v.data)
            lines.append(f"{head}{marker}{shown}  [#{tags[v]}] (shown above)")
            continue
        tag = ""
        if uses[v] > 1:
            tags[v] = len(tags) + 1
            tag = f"  [#{tags[v]}]"
        lines.append(f"{head}{marker}{describe(v)}{tag}")
    if stack:
        lines.append(f"... cut after {len(entries):,} lines: the graph has more nodes "
                     f"(tree(root, max_nodes=...) prints more, max_nodes=None all of it)")
    return TextTree("\n".join(lines))
