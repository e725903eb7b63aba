"""Rendering: renderer discovery, real SVG/PNG output, and the no-renderer fallback.

Tests that need a renderer skip without one, except in CI (``CI`` set), where
they fail: CI installs ``graphviz-pure`` through the ``render`` extra.
"""

from __future__ import annotations

import html
import re
import stat
import sys
from pathlib import Path

import pytest
from _draw_support import need_renderer

import microgrannd as mg
from microgrannd import Value
from microgrannd import render as render_mod
from microgrannd.draw import draw
from microgrannd.render import ENV_VAR, RendererNotFoundError, RenderError, find_renderer

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="fake renderers are shell scripts")


def fake_program(folder: Path, name: str, body: str = "exit 0") -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def no_renderer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine with no renderer anywhere we look."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(render_mod, "_scripts_dir", lambda: str(empty))


# --- real pictures


def test_sigmoid_renders_to_svg_with_one_cluster_of_four_ops(tmp_path: Path) -> None:
    need_renderer()
    x = Value(-1.0, "x")
    out = draw(x.sigmoid()).render(tmp_path / "sigmoid.svg")
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    clusters = re.findall(r'class="cluster">\s*<title>(cluster_\w+)</title>', svg)
    assert clusters == ["cluster_0"]
    assert ">sigmoid</text>" in svg
    op_titles = re.findall(r'class="node">\s*<title>(o\d+)</title>', svg)
    assert len(op_titles) == 4
    for symbol in ("×", "exp", "+", "1/x"):
        assert f">{symbol}</text>" in svg


def test_png_and_jupyter_svg(tmp_path: Path) -> None:
    need_renderer()
    x = Value(2.0, "x")
    d = draw(x * x + 1.0)
    png = d.render(tmp_path / "g.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    bundle = d._repr_mimebundle_()
    # values x, x*x, the constant 1 and the result, plus the two op nodes
    assert bundle["image/svg+xml"].count('class="node"') == 6
    svg = d._repr_svg_()
    assert svg is not None and "<svg" in svg


def test_backward_view_renders_its_edge_labels(tmp_path: Path) -> None:
    need_renderer()
    x = Value(-1.0, "x")
    svg = html.unescape(draw(mg.sigmoid(x), backward=True, upstream=3.0).pipe("svg").decode())
    assert ">local -1</text>" in svg and ">local 1</text>" in svg and ">grad -0.217</text>" in svg
    assert "local -1" in svg and "grad 0.5898" in svg and "upstream" in svg


def test_unknown_format_is_a_render_error(tmp_path: Path) -> None:
    need_renderer()
    with pytest.raises(RenderError):
        draw(Value(1.0)).render(tmp_path / "g.notaformat")


# --- discovery order


@posix_only
def test_discovery_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_renderer: None) -> None:
    on_path = tmp_path / "path"
    scripts = tmp_path / "scripts"
    on_path.mkdir()
    scripts.mkdir()
    monkeypatch.setattr(render_mod, "_scripts_dir", lambda: str(scripts))
    assert find_renderer() is None
    in_scripts = fake_program(scripts, "graphviz-pure")
    assert find_renderer() == str(in_scripts)
    monkeypatch.setenv("PATH", str(on_path))
    pure_on_path = fake_program(on_path, "graphviz-pure")
    assert find_renderer() == str(pure_on_path)
    dot = fake_program(on_path, "dot")
    assert find_renderer() == str(dot)
    chosen = fake_program(tmp_path, "my-dot")
    monkeypatch.setenv(ENV_VAR, str(chosen))
    assert find_renderer() == str(chosen)


def test_a_wrong_env_var_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nothing-here"))
    with pytest.raises(RendererNotFoundError, match=ENV_VAR):
        find_renderer()


@posix_only
def test_a_failing_renderer_is_a_render_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broken = fake_program(tmp_path, "broken-dot", "echo 'Error: layout exploded' >&2; exit 3")
    monkeypatch.setenv(ENV_VAR, str(broken))
    d = draw(Value(1.0) * 2.0)
    with pytest.raises(RenderError, match="layout exploded"):
        d.render(tmp_path / "g.svg")
    assert d._repr_svg_() is None
    assert "layout exploded" in d._repr_mimebundle_()["text/plain"]


# --- no renderer at all


def test_without_renderer_the_dot_file_is_written_and_the_error_says_how(
    tmp_path: Path, no_renderer: None
) -> None:
    d = draw(mg.sigmoid(Value(0.5, "x")))
    with pytest.raises(RendererNotFoundError) as caught:
        d.render(tmp_path / "graph.svg")
    message = str(caught.value)
    assert "pip install graphviz-pure" in message and 'pip install ".[render]"' in message
    assert "graphviz" in message and str(tmp_path / "graph.dot") in message
    assert (tmp_path / "graph.dot").read_text(encoding="utf-8") == d.source
    assert not (tmp_path / "graph.svg").exists()


def test_dot_output_needs_no_renderer(tmp_path: Path, no_renderer: None) -> None:
    d = draw(Value(1.0, "x") * 2.0)
    assert d.render(tmp_path / "g.dot").read_text(encoding="utf-8") == d.source
    assert d.render(tmp_path / "g.gv").read_text(encoding="utf-8") == d.source


def test_jupyter_falls_back_to_text(no_renderer: None) -> None:
    d = draw(Value(1.0, "x") * 2.0)
    assert d._repr_svg_() is None
    bundle = d._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    text = bundle["text/plain"]
    assert "x = 1  grad ?  (leaf)" in text and "digraph" not in text  # the text tree, not the DOT source
    assert "pip install graphviz-pure" in text


def test_path_without_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="extension"):
        draw(Value(1.0)).render(tmp_path / "graph")
