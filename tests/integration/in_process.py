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


@contextmanager
def served_app(app, port: int | None = None, start_timeout_s: float = 30) -> Iterator[str]:
    """`app` (an ASGI app) served by uvicorn in a thread of the test process, on `port` (else a
    free one): its base URL."""
    import threading
    import time

    import uvicorn

    from leadscore.local_servers import free_port

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + start_timeout_s
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
