"""The scoring service built in the test process, as `bentoml serve` builds it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def service_in_process(config_file: Path) -> Iterator:
    """The service instance, built as `bentoml serve` builds it from `config_file`, answering the
    shared app's routes (as BentoML's server sets the current service); shut down after."""
    os.environ["LEADSCORE_CONFIG"] = str(config_file)
    from leadscore.serving import service as module

    try:
        instance = module.LeadScoring()
    finally:
        del os.environ["LEADSCORE_CONFIG"]
    overrides = module.app.dependency_overrides
    for lookup in (module.get_current_service, module._current_service):
        overrides[lookup] = lambda: instance
    try:
        yield instance
    finally:
        overrides.clear()
        instance.shutdown()
