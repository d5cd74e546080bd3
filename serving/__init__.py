"""Serving: the BentoML service (service.py), its scorer, portraits, routing, batch scores."""

SERVICE_NAME = "leadscore"


def bentoml_options(workers: int) -> str:
    """BENTOML_CONFIG_OPTIONS that run the service with `workers` processes (serving.workers)."""
    return f"services.{SERVICE_NAME}.workers={workers}"
