"""Hypothesis profiles for the test suite, chosen by HYPOTHESIS_PROFILE.

* ``fast`` (the default): a quick run for development, 60 examples a property.
* ``ci``: the thorough run ``.ci/run`` selects, about 1000 examples a property.
* ``mutation``: 100 derandomized examples, no shrinking, no example database; used by
  tests/test_mutation.py to run properties against deliberately broken engines.

Deadlines are off everywhere: timing on shared machines is noise, and speed is
measured by the benchmarks, not by tests.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile("fast", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "mutation",
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is enough: no shrinking
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
