"""``python -m benchmarks``: run the benchmark (see ``python -m benchmarks --help``)."""

import sys

from benchmarks.runner import main

sys.exit(main())
