"""A small reader for the DOT text microgrannd writes (for the drawing tests)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import pytest

from microgrannd.render import RendererNotFoundError, find_renderer

_NODE = re.compile(r"^\s*(\w+) \[(.*)\]\s*$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?\s*$")
_CLUSTER = re.compile(r"^\s*subgraph (cluster_\w+) \{\s*$")
_LABEL = re.compile(r'(?:^|\s)label=("(?:[^"\\]|\\.)*"|<.*>|[^\s\]]+)')


@dataclass
class Dot:
    """Nodes (name -> attribute text), edges in order, and cluster membership."""

    nodes: dict[str, str] = field(default_factory=dict)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)  # cluster -> its label line
    cluster_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> enclosing clusters
    cluster_parent: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def label(self, node: str) -> str:
        m = _LABEL.search(self.nodes[node])
        return m.group(1).strip('"') if m else ""

    def edge_label(self, k: int) -> str:
        m = _LABEL.search(self.edges[k][2])
        return m.group(1).strip('"') if m else ""

    def members(self, cluster: str) -> list[str]:
        return [n for n, cs in self.cluster_of.items() if cs and cs[-1] == cluster]

    def ops(self) -> list[str]:
        return [n for n in self.nodes if re.fullmatch(r"o\d+", n)]

    def values(self) -> list[str]:
        return [n for n in self.nodes if re.fullmatch(r"v\d+", n)]


def parse(source: str) -> Dot:
    """Read nodes, edges and nested clusters from DOT ``source``."""
    dot = Dot()
    stack: list[str] = []
    for line in source.splitlines()[1:]:
        if m := _CLUSTER.match(line):
            dot.cluster_parent[m.group(1)] = tuple(stack)
            stack.append(m.group(1))
            continue
        if line.strip() == "}":
            if stack:
                stack.pop()
            continue
        if stack and line.strip().startswith("label=") and stack[-1] not in dot.clusters:
            dot.clusters[stack[-1]] = line.strip()
            continue
        if m := _EDGE.match(line):
            dot.edges.append((m.group(1), m.group(2), m.group(3) or ""))
        elif (m := _NODE.match(line)) and m.group(1) not in ("graph", "node", "edge"):
            dot.nodes[m.group(1)] = m.group(2)
            dot.cluster_of[m.group(1)] = tuple(stack)
    return dot


def need_renderer() -> str:
    """The renderer's path; skip the test without one, but fail it in CI."""
    try:
        found = find_renderer()
    except RendererNotFoundError:
        found = None
    if found is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail('CI must install a graphviz renderer (pip install ".[render]" in the checkout)')
        pytest.skip("no graphviz renderer installed")
    return found
