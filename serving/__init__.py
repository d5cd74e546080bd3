"""Serving: the BentoML service (service.py), its scorer, portraits, routing, batch scores."""

import json

SERVICE_NAME = "leadscore"
OVERRIDES_ENV_VAR = "BENTOML_CONFIG_OVERRIDES"  # JSON, merged over BentoML's configuration


def bentoml_overrides(workers: int | None = None, access_log: bool = True) -> str:
    """BENTOML_CONFIG_OVERRIDES for `bentoml serve`: the service's worker processes
    (serving.workers) and, for benchmarks, no per-request access log (for every service)."""
    services: dict = {}
    if workers is not None:
        services[SERVICE_NAME] = {"workers": workers}
    if not access_log:
        services["logging"] = {"access": {"enabled": False}}
    return json.dumps({"services": services})
