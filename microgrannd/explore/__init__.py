"""Step through backprop in the browser: ``mg.explore(y)`` writes one self-contained HTML page.

The page draws the graph in :func:`~microgrannd.draw`'s visual language (value
boxes with data and grad, op circles, composite calls as clusters) and walks
through the forward pass node by node, then the backward pass one (node,
parent) edge at a time, stating the chain rule with numbers in its panel.
Composite calls collapse and expand in the page; each state is laid out
anew by Graphviz compiled to WebAssembly (the vendored ``@viz-js/viz``
standalone build, see ``assets/README.md``), inlined in the page with
everything else: the file opens offline, from ``file://``, and makes no
network request.

Every number the page shows is computed here (:mod:`microgrannd.explore.steps`);
the page only adds the running sums, in the order ``backward`` does.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from microgrannd.draw import CALL_COLOR, CLUSTER_COLORS, KIND_COLORS, OP_COLOR
from microgrannd.engine import Value
from microgrannd.explore.steps import (
    AUTO_STEPS,
    DEFAULT_MAX_NODES,
    MAX_DRAWN,
    Graph,
    build,
    collapsed_scopes,
    drawn_count,
    to_json,
    walkthrough,
)

__all__ = ["AUTO_STEPS", "DEFAULT_MAX_NODES", "MAX_DRAWN", "Explorer", "explore"]

VIZ_VERSION = "3.31.0"  # @viz-js/viz, which embeds Graphviz 16.1.0 (see assets/README.md)
FRAME_HEIGHT = 640  # pixels: the notebook frame's height


@cache
def _asset(name: str) -> str:
    return resources.files("microgrannd.explore").joinpath("assets", name).read_text(encoding="utf-8")


def _script_text(text: str) -> str:
    """Text safe inside ``<script>``: no ``</script`` closes the element early, no ``<!--`` opens a comment.

    (``<\\/`` and ``<\\!`` mean ``</`` and ``<!`` in JSON strings, JavaScript strings and regular expressions.)
    """
    return re.sub(r"<(/script|!--)", lambda m: "<\\" + m.group(1), text, flags=re.IGNORECASE)


class Explorer:
    """An explorable graph: ``.save(path)`` writes the page, ``.html()`` returns it; Jupyter shows it inline.

    Attributes:
        graph: the :class:`~microgrannd.explore.steps.Graph` (nodes, scopes, numbers).
        collapsed: the indices of the scopes the page opens collapsed.
    """

    def __init__(self, graph: Graph, collapsed: set[int], title: str = "microgrannd explorer") -> None:
        self.graph = graph
        self.collapsed = collapsed
        self.title = title
        self._html: str | None = None

    def steps(self) -> list[str]:
        """The walk-through of the opening state, one line per step (the lines the page's panel shows)."""
        return [s.text(self.graph) for s in walkthrough(self.graph, self.collapsed)]

    def data(self) -> dict[str, Any]:
        """What the page's script reads: the numbers, the opening state and the colours."""
        return {
            **to_json(self.graph),
            "collapsed": sorted(self.collapsed),
            "maxDrawn": MAX_DRAWN,
            "style": {"kinds": KIND_COLORS, "op": OP_COLOR, "call": CALL_COLOR, "clusters": list(CLUSTER_COLORS)},
        }

    def html(self) -> str:
        """The page: one HTML document with its script, style, data and Graphviz inlined."""
        if self._html is None:
            # "<" only occurs inside JSON strings, where \\u003c is the same character
            payload = json.dumps(self.data(), ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
            parts = {
                "TITLE": html.escape(self.title),
                "STYLE": _asset("explore.css"),
                "VIZ": _script_text(_asset("viz-global.js")),
                "DATA": payload,
                "SCRIPT": _script_text(_asset("explore.js")),
            }
            # one pass over the template: nothing inserted is searched again
            self._html = re.sub(r"/\*@(\w+)@\*/", lambda m: parts[m.group(1)], _asset("page.html"))
        return self._html

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` (UTF-8) and return the path."""
        target = Path(path)
        target.write_text(self.html(), encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        """An ``<iframe srcdoc=...>`` holding the page: JupyterLab, the classic notebook and VS Code show it."""
        return (f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" title="{html.escape(self.title)}" '
                f'style="width: 100%; height: {FRAME_HEIGHT}px; border: 1px solid #ddd; border-radius: 4px;" '
                'sandbox="allow-scripts"></iframe>')

    def __repr__(self) -> str:
        g = self.graph
        return (f"<Explorer: {len(g.nodes)} nodes, {len(g.scopes)} composite calls "
                f"({len(self.collapsed)} collapsed), {len(self.steps())} steps; .save('graph.html') writes the page>")


def explore(
    y: Value,
    upstream: float = 1.0,
    collapse: bool | str | Iterable[str] | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    *,
    params: Iterable[Value] = (),
) -> Explorer:
    """An interactive page that steps through the forward and backward pass of ``y``.

    Args:
        y: the output node.
        upstream: the gradient that seeds backward (d loss / d y).
        collapse: which composite calls the page opens collapsed: ``None``
            (default) expands whole levels of calls, shallowest first, while
            the walk-through has at most ``AUTO_STEPS`` (100) steps; ``True``
            all; ``False`` none; a name or names: the calls of those composites.
            Any call can be collapsed or expanded in the page.
        max_nodes: the most nodes the graph may have; the size is counted
            first, so a larger graph raises
            :class:`~microgrannd.draw.GraphTooLargeError` at once.  So does
            an opening state that would draw more than ``MAX_DRAWN`` (2500)
            nodes; the page refuses to expand past it too.
        params: leaves to treat as parameters: like the weights of ``nn``
            neurons (found on their own) each sits inside the call that uses it.

    Returns an :class:`Explorer`: ``.save("graph.html")``, ``.html()``, or
    display it in a notebook.
    """
    graph = build(y, upstream, max_nodes=max_nodes, params=params)
    collapsed = collapsed_scopes(graph, collapse)
    drawn = drawn_count(graph, collapsed)
    if drawn > MAX_DRAWN:
        from microgrannd.draw import GraphTooLargeError

        raise GraphTooLargeError(
            f"the page would draw {drawn} nodes at once, more than it lays out ({MAX_DRAWN}); "
            "collapse more (collapse=True), record parts of the graph as composites (mg.composite, mg.scope) "
            "so that they can be collapsed, or explore a part of it",
            count=drawn, max_nodes=MAX_DRAWN,
        )
    return Explorer(graph, collapsed)
