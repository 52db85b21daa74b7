"""Hypothesis profiles of the fuzz suite.

``ci`` (selected when ``CI`` is set) runs 10,000 examples per target, ``dev``
(the local default) 500, ``nightly`` (``HYPOTHESIS_PROFILE=nightly``, what
``make fuzz`` uses) 100,000. An explicit ``HYPOTHESIS_PROFILE`` always wins.

The profile is applied by the :data:`FUZZ` decorator on each fuzz target, not
loaded globally, so the property tests elsewhere in the suite keep their own
example counts when everything runs in one session.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["FUZZ", "PROFILE", "PROFILES"]

#: Examples per target in each profile.
PROFILES = {"dev": 500, "ci": 10_000, "nightly": 100_000}

for _name, _examples in PROFILES.items():
    settings.register_profile(
        _name,
        max_examples=_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

#: The profile of this run.
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
#: Settings decorator of every fuzz target.
FUZZ = settings(settings.get_profile(PROFILE))
