"""``python -m microgrannd``: the command line (see :mod:`microgrannd.cli`)."""

from microgrannd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
