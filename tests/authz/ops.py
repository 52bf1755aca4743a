"""Authorization rules of the operators' probes (gridgov.core.observability): /readyz and
/metrics need no sign-in. /metrics is limited to GRIDGOV_METRICS_ALLOW addresses or the
GRIDGOV_METRICS_TOKEN bearer token whoever the user is (tests/core/test_observability.py checks
the refusals); /readyz tells anyone whether the site is ready and only operators why not."""

from __future__ import annotations

from tests.authz._base import Rule, static

RULES: dict[str, list[Rule]] = {
    "readyz": [Rule("GET", static("/readyz"), "probe")],
    "metrics": [Rule("GET", static("/metrics"), "probe")],
}
