#!/usr/bin/env bash
# Set up a virtual environment in .venv and run one of the project's jobs.
#   bash scripts/dev.sh tour    install microgrannd (+ drawing, demos) and run the tour
#   bash scripts/dev.sh test    install the dev extras, run ruff, mypy and the test suite
# The dev extras include playwright for the explorer's browser tests, which drive the system's
# chromium at /usr/bin/chromium (apt-get install chromium); `playwright install` is never needed.
# Extra arguments after `test` go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-}"; shift || true
py="${PYTHON:-python3}"

make_venv() {
    if [ -x .venv/bin/python ] && .venv/bin/python -m pip --version >/dev/null 2>&1; then
        return
    fi
    echo "== creating .venv with $($py --version)"
    if ! "$py" -m venv .venv 2>/dev/null; then
        # Debian without python3-venv has no ensurepip: make the venv bare and
        # let the system's pip install pip into it.
        rm -rf .venv
        "$py" -m venv --without-pip .venv
        "$py" -m pip --python .venv/bin/python install -q pip
    fi
}

install() {
    echo "== installing microgrannd[$1]"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$1]"
}

case "$job" in
    tour)
        make_venv
        install "render,demos"
        .venv/bin/python demos/tour.py "$@"
        ;;
    test)
        make_venv
        install "dev"
        if [ ! -x /usr/bin/chromium ]; then
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                echo "== installing chromium for the explorer's browser tests"
                (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation) </dev/null \
                    >/dev/null || echo "== note: could not install chromium"
            else
                echo "== note: no /usr/bin/chromium: the explorer's browser tests will skip (fail under CI=true);" \
                     "install it with: sudo apt-get install chromium fonts-liberation"
            fi
        fi
        echo "== ruff";  .venv/bin/python -m ruff check microgrannd tests demos benchmarks scripts
        echo "== mypy";  .venv/bin/python -m mypy
        echo "== pytest"; .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: bash scripts/dev.sh tour|test [args...]" >&2
        exit 2
        ;;
esac
