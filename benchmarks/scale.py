"""`leadscore bench scale`: leadscore on the engines users scale out to, each beside the
embedded default measured in the same run (issue 18).

- mlflow_postgres: the registry's round trip (log and register a model, load it by alias) on
  an MLflow tracking server with PostgreSQL, beside the embedded SQLite store
  (benchmarks/mlflow_stores.py).
"""

from __future__ import annotations

from pathlib import Path

from leadscore.benchmarks.mlflow_stores import mlflow_postgres
from leadscore.config import Settings


def run(settings: Settings, work: Path) -> dict:
    return {"mlflow_postgres": mlflow_postgres(settings, work / "mlflow_postgres")}
