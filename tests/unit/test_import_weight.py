"""What a process imports decides how fast it starts. `bentoml serve`'s supervisor imports
the service module only to read its configuration: that import loads no heavy library; a
worker building the service loads Feast, MLflow and the model's libraries, but no plotting
and no training code. Training on a flat table does not import Feast, and the CLI imports
no heavy library before a command runs (`leadscore --help` is quick). (The layers between
our own packages are checked by `lint-imports`; these are the libraries it cannot see.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

# what LeadScoring.__init__ imports: a worker's whole set
WORKER = ("leadscore.serving.service, leadscore.features.store, leadscore.segments.api, "
          "leadscore.segments.engine, leadscore.serving.champion, leadscore.serving.portrait.reader, "
          "leadscore.serving.webhook, leadscore.live.ingest, leadscore.live.online, "
          "leadscore.serving.ingest, leadscore.serving.outcomes, leadscore.serving.marketing_page")


def imported_modules(module: str) -> set[str]:
    """Every module a fresh interpreter imports to `import module` (python -X importtime);
    `module` may be a comma-separated list."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            capture_output=True, text=True, check=True)
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("module, forbidden", [
    ("leadscore.serving.service", {"feast", "mlflow", "sklearn", "lightgbm", "duckdb", "pandas",
                                   "matplotlib", "leadscore.training"}),
    (WORKER, {"matplotlib", "shap", "leadscore.training", "splink"}),
    ("leadscore.training.flat", {"feast", "leadscore.features"}),
    ("leadscore.cli", {"feast", "mlflow", "bentoml", "pandas", "matplotlib", "splink", "duckdb"}),
])
def test_a_process_imports_only_what_it_needs(module, forbidden):
    modules = imported_modules(module)
    assert module.split(",")[0] in modules and "leadscore.config" in modules  # the measurement works
    heavy = {name for name in modules if name.split(".")[0] in forbidden or
             any(name == f or name.startswith(f + ".") for f in forbidden)}
    assert not heavy, f"{module} imports {sorted(heavy)[:10]}"
