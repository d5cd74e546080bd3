"""The reference for `leadscore bench serving`: a bare BentoML endpoint that returns a constant.

    bentoml serve leadscore.benchmarks.reference_service:Reference --port 3001

`POST /score` takes the same body as the real service (`{"pid": "..."}`, ignored) and returns
a constant dict, so the load generator sends identical requests to both. Whatever it costs
per request is BentoML's own share (HTTP, routing, validation, JSON), which the real
service pays too: the serving goals are set relative to it.
"""

from __future__ import annotations

import bentoml

CONSTANT = {"pid": None, "probability": 0.5, "score": 50.0, "tier": "C"}


@bentoml.service(name="reference", traffic={"timeout": 60})
class Reference:
    """One endpoint, no model, no features."""

    @bentoml.api
    def score(self, pid: str = "") -> dict:
        return CONSTANT
