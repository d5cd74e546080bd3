"""Serving: the BentoML service (service.py), its scorer, portraits, routing, batch scores."""

import json
from pathlib import Path

SERVICE_NAME = "leadscore"
OVERRIDES_ENV_VAR = "BENTOML_CONFIG_OVERRIDES"  # JSON, merged over BentoML's configuration
HOME_ENV_VAR = "BENTOML_HOME"


def bentoml_home(data_dir: Path, port: int) -> str:
    """BENTOML_HOME for the `bentoml serve` of `data_dir` on `port`: a folder of its own.

    BentoML keeps its workers' Prometheus counts in BENTOML_HOME/prometheus_multiproc_dir and
    empties that folder whenever a service starts (`bentoml.serving.ensure_prometheus_dir`), so
    services sharing a home (the default ~/bentoml) wiped each other's: a second service on
    the machine, a benchmark's say, turned the first one's /metrics to zero. The service takes
    nothing from BentoML's model or bento stores (its models come from MLflow)."""
    return str(data_dir / "bentoml" / f"port-{port}")


def bentoml_overrides(workers: int | None = None, access_log: bool = True) -> str:
    """BENTOML_CONFIG_OVERRIDES for `bentoml serve`: the service's worker processes
    (serving.workers) and, for benchmarks, no per-request access log (for every service)."""
    services: dict = {}
    if workers is not None:
        services[SERVICE_NAME] = {"workers": workers}
    if not access_log:
        services["logging"] = {"access": {"enabled": False}}
    return json.dumps({"services": services})
