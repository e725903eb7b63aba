"""Finding a graphviz renderer and turning DOT text into pictures.

The ``graphviz`` Python package only writes DOT; a picture needs a program
that lays the graph out.  :func:`find_renderer` looks, in this order, for:

1. the program named by the environment variable ``MICROGRANND_DOT``
   (a path, or a name looked up on ``PATH``);
2. ``dot`` on ``PATH`` (the system graphviz package);
3. ``graphviz-pure`` on ``PATH`` or in the running interpreter's scripts
   folder (the wheel installed by ``pip install graphviz-pure``, which is
   what the ``render`` extra, ``pip install ".[render]"`` in a checkout,
   brings).

The version string is never parsed (``graphviz-pure`` prints a different one
from ``dot``), so nothing here calls ``graphviz.version()``.  When no
renderer exists, :func:`write_picture` still writes the ``.dot`` file and
raises :class:`RendererNotFoundError`, whose message says how to get one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "HINT",
    "RenderError",
    "RendererNotFoundError",
    "find_renderer",
    "render_source",
    "write_picture",
]

ENV_VAR = "MICROGRANND_DOT"

HINT = (
    "to render pictures, install a graphviz renderer: pip install graphviz-pure (any OS; "
    'in a checkout of microgrannd, pip install ".[render]" brings it), '
    "or your system's graphviz package (apt install graphviz, brew install graphviz, winget install graphviz), "
    f"or set {ENV_VAR} to the path of a dot program"
)

DOT_SUFFIXES = {"dot", "gv"}

# A renderer that takes longer than this on one of our graphs is stuck.
TIMEOUT_SECONDS = 120.0


class RendererNotFoundError(RuntimeError):
    """No program that can lay out DOT was found (the message says how to get one)."""


class RenderError(RuntimeError):
    """The renderer ran but failed (unknown format, bad DOT, crash)."""


def _scripts_dir() -> str:
    """The running interpreter's scripts folder (a virtualenv's ``bin``)."""
    return sysconfig.get_path("scripts")


def find_renderer() -> str | None:
    """Return the path of the renderer to use, or ``None`` if there is none.

    Raises :class:`RendererNotFoundError` if ``MICROGRANND_DOT`` is set but
    names no executable program: a wrong setting is reported, not skipped.
    """
    wanted = os.environ.get(ENV_VAR, "").strip()
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise RendererNotFoundError(f"{ENV_VAR}={wanted!r} is not an executable program; {HINT}")
        return found
    for name in ("dot", "graphviz-pure"):
        found = shutil.which(name)
        if found is not None:
            return found
    return shutil.which("graphviz-pure", path=_scripts_dir())


def _require_renderer() -> str:
    found = find_renderer()
    if found is None:
        raise RendererNotFoundError(f"no graphviz renderer found; {HINT}")
    return found


def render_source(source: str, fmt: str) -> bytes:
    """Lay out DOT ``source`` and return the picture in format ``fmt`` (``svg``, ``png``, ...)."""
    fmt = fmt.lower().lstrip(".")
    if fmt in DOT_SUFFIXES:
        return source.encode("utf-8")
    renderer = _require_renderer()
    try:
        done = subprocess.run(
            [renderer, f"-T{fmt}"],
            input=source.encode("utf-8"),
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise RenderError(f"{renderer} took more than {TIMEOUT_SECONDS:g} s; draw fewer nodes") from e
    except OSError as e:
        raise RenderError(f"cannot run {renderer}: {e}") from e
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        shown = message[-1] if message else f"exit status {done.returncode}"
        raise RenderError(f"{Path(renderer).name} -T{fmt} failed: {shown}")
    return done.stdout


def write_picture(source: str, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
    """Write DOT ``source`` to ``path`` as a picture; return the path written.

    The format is ``fmt`` or the file's extension (``.svg``, ``.png``, ...);
    ``.dot`` and ``.gv`` write the DOT text itself and need no renderer.
    Without a renderer, the DOT text is written next to ``path`` (same name,
    ``.dot`` extension) and :class:`RendererNotFoundError` says where it is
    and how to get a renderer.
    """
    target = Path(path)
    fmt = (fmt or target.suffix).lower().lstrip(".")
    if not fmt:
        raise ValueError(f"cannot tell the format of {str(target)!r}: give it an extension such as .svg")
    if fmt in DOT_SUFFIXES:
        target.write_text(source, encoding="utf-8")
        return target
    try:
        picture = render_source(source, fmt)
    except RendererNotFoundError as e:
        dot_path = target.with_suffix(".dot")
        dot_path.write_text(source, encoding="utf-8")
        raise RendererNotFoundError(f"wrote {dot_path} but not {target}: {e}") from None
    target.write_bytes(picture)
    return target
