"""`leadscore retrain` on a copy of the tiny world: with an outcome the CRM posted, it registers
a refit challenger beside the unchanged champion; the service then scores every request (score,
batch, ingest) with it in shadow: logged with the challenger's version, never returned."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from in_process import service_in_process
from pydantic import TypeAdapter

import mlflow
from leadscore.clock import open_clock
from leadscore.config import load_settings
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.outcomes import Outcome, append_outcomes
from leadscore.live.score_log import SHADOW, ScoreLog
from leadscore.scoring.registry import CHALLENGER, champion_version, read_spec, use_store

pytestmark = pytest.mark.integration
CRM = {"X-API-Key": "demo-crm-key"}


@pytest.fixture(scope="module")
def retrained(world, config_writer, tmp_path_factory):
    """A copy of the tiny world (data, MLflow store, a Feast registry of its own; no live state:
    what other tests ingested, posted and scored stays theirs), an opportunity posted by the CRM
    through the live path, then `leadscore retrain`."""
    root = tmp_path_factory.mktemp("retrain")
    config_file = config_writer(root, world={"scale": 0.05}, serving={"workers": 1})
    data = world["root"] / "data"
    # Not the Feast folder: the registry records its online store's tables with their path, so
    # a copy's `feast apply` would drop the tables of the world every other module reads.
    shutil.copytree(data, root / "data", symlinks=True,
                    ignore=lambda where, names: ["live", "feast"] if Path(where) == data else [])
    shutil.copytree(world["root"] / "mlflow", root / "mlflow")
    settings = load_settings(config_file)
    cli = [world["cli"], "-c", str(config_file)]
    subprocess.run([*cli, "features", "apply"], check=True, capture_output=True, timeout=300)
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        pids = [row[0] for row in con.execute("SELECT pid FROM person ORDER BY pid LIMIT 30").fetchall()]
    log = EventLog(settings.live_dir / EVENT_LOG)
    at = open_clock(settings).now() - timedelta(days=200)
    append_outcomes(log, TypeAdapter(list[Outcome]).validate_python(
        [{"kind": "opportunity_created", "crm_id": "OPP-RT-1", "pid": pids[0], "at": at.isoformat()}]), at)
    log.close()
    champion = champion_version(settings)  # what other modules registered before decides the numbers
    latest = max(int(v.version) for v in use_store(settings).search_model_versions(
        f"name = '{settings.training.registered_model}'"))
    result = subprocess.run([*cli, "retrain"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"settings": settings, "config_file": config_file, "output": " ".join(result.stderr.split()),
            "pids": pids, "cli": world["cli"], "champion": champion, "challenger": str(latest + 1)}


def test_retrain_registers_a_refit_challenger_and_leaves_the_champion(retrained):
    settings, output = retrained["settings"], retrained["output"]
    assert "(1 opportunities from the CRM's outcomes beside the batch's)" in output
    assert "alias challenger" in output
    client = use_store(settings)
    name = settings.training.registered_model
    assert champion_version(settings) == retrained["champion"]
    version = client.get_model_version_by_alias(name, CHALLENGER)
    assert str(version.version) == retrained["challenger"]
    spec = read_spec(version.run_id, name, retrained["challenger"])
    assert spec.extra["retrained"] == "true"
    # refit up to the latest snapshot observed for partial_labels_min_days (labels known so far),
    # calibrated on the latest matured ones (whole labels), out of sample of a fit ending a purge
    # before that window
    training = settings.training
    now = pd.Timestamp(open_clock(settings).now()).tz_convert(None)  # the windows' dates are UTC
    step, horizon = pd.Timedelta(days=training.snapshot_every_days), pd.Timedelta(days=training.horizon_days)
    fit_end = pd.Timestamp(spec.extra["fit_window"].split("..")[1])
    observed = pd.Timedelta(days=training.retrain.partial_labels_min_days)
    assert fit_end + observed <= now < fit_end + observed + step
    calibration_end = pd.Timestamp(spec.extra["calibration_window"].split("..")[1])
    assert calibration_end + horizon <= now < calibration_end + horizon + step
    held_out_end = pd.Timestamp(spec.extra["calibration_fit_window"].split("..")[1])
    calibration_start = pd.Timestamp(spec.extra["calibration_window"].split("..")[0])
    assert held_out_end + pd.Timedelta(days=training.retrain.calibration_purge_days) <= calibration_start
    assert version.tags["lineage"].startswith("retrain-")
    run = client.get_run(version.run_id)
    assert run.data.tags["kind"] == "retrain" and "validation_pr_auc" in run.data.metrics


@pytest.fixture(scope="module")
def service(retrained):
    with service_in_process(retrained["config_file"]) as instance:
        yield instance


def _answers(client: TestClient, pids: list[str]) -> list:
    single = [client.post("/score", json={"pid": pid}, headers=CRM).json() for pid in pids]
    batch = client.post("/score_batch", json={"items": [{"pid": p} for p in pids]}, headers=CRM).json()
    return [single, batch]


def _form_fill_of_a_known_person(settings) -> dict:
    raw = pd.read_parquet(settings.raw_dir / "form_fills.parquet").dropna(subset=["email"]).iloc[0]
    fields = ["form_type", "asset", "cookie_id", "first_name", "last_name", "email", "phone",
              "company_name", "job_title"]
    at = open_clock(settings).now() - timedelta(hours=1)
    return {"form_fill_id": "FF-RETRAIN-1", "submitted_at": at.isoformat(),
            **{f: None if pd.isna(raw[f]) else str(raw[f]) for f in fields}}


def test_the_challenger_scores_in_shadow_and_never_changes_an_answer(retrained, service):
    from leadscore.serving.service import app

    client, pids, settings = TestClient(app), retrained["pids"], retrained["settings"]
    champion, challenger = retrained["champion"], retrained["challenger"]
    assert client.get("/model", headers=CRM).json()["challenger_version"] == challenger
    with_challenger = _answers(client, pids)
    # through this service's ingest route (the routers of a service built after another's in
    # one process take their place in the shared app)
    answer = client.post("/ingest/form_fills", json=[_form_fill_of_a_known_person(settings)],
                         headers={"X-API-Key": "demo-ingest-key"})
    assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
    service.wait_for_records()  # /score's are logged after the answer, shadows a moment later
    logged = ScoreLog(settings.live_dir / "scores").read()
    served, shadow = logged[logged["trigger"] != SHADOW], logged[logged["trigger"] == SHADOW]
    assert set(served["trigger"]) == {"score", "score_batch", "ingest"}
    assert set(served["model_version"]) == {champion} and set(shadow["model_version"]) == {challenger}
    key = ["at", "pid"]  # one shadow row per person scored, at the same instant
    assert sorted(map(tuple, shadow[key].to_numpy())) == sorted(map(tuple, served[key].to_numpy()))
    assert shadow["probability"].to_numpy().tolist() != served["probability"].to_numpy().tolist()

    use_store(settings).delete_registered_model_alias(settings.training.registered_model, CHALLENGER)
    assert service.challenger.check()
    assert client.get("/model", headers=CRM).json()["challenger_version"] is None
    assert _answers(client, pids) == with_challenger  # word for word, as without a challenger
    service.wait_for_records()
    again = ScoreLog(settings.live_dir / "scores").read()
    assert (again["trigger"] == SHADOW).sum() == len(shadow)  # no challenger, no shadow rows
    portrait_history = service.portraits.portrait(pids[0]).score_history
    assert all(point.model_version != challenger for point in portrait_history)


def _promote(retrained, *options: str) -> dict:
    result = subprocess.run([retrained["cli"], "-c", str(retrained["config_file"]), "promote", "--json",
                             *options], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_promote_needs_the_challenger_to_win_and_records_its_evidence(retrained, service):
    """No score has matured in the copy (the challenger scored in shadow at the clock): the
    retrained challenger is kept (its registered figures are its candidate's). As a challenger
    `leadscore train` registered, the two versions' figures on their shared test window decide.
    The registry tags are set so that it first ranks better but is calibrated worse (kept),
    then wins (promoted, with a run of evidence in MLflow)."""
    settings, champion, challenger = retrained["settings"], retrained["champion"], retrained["challenger"]
    client, name = use_store(settings), settings.training.registered_model
    client.set_registered_model_alias(name, CHALLENGER, challenger)  # the shadow test took it away
    window = client.get_model_version(name, champion).tags["test_window"]
    figures = {champion: (0.20, 0.010), challenger: (0.30, 0.050)}
    for version, (pr_auc, ece) in figures.items():
        for key, value in (("pr_auc", pr_auc), ("ece", ece), ("test_window", window)):
            client.set_model_version_tag(name, version, key, str(value))
    refit = _promote(retrained)  # a retrained version's registered figures are not its own
    assert not refit["promote"] and "a retrained challenger has none of its own" in refit["reason"]
    # as a version `leadscore train` registered as challenger (its figures are its own)
    client.delete_model_version_tag(name, challenger, "refit")
    kept = _promote(retrained)
    assert not kept["promote"] and not kept["promoted"] and kept["live"]["rows"] == 0
    # the live evidence was resampled as configured (none of it matured: ahead in no resample)
    live = kept["live"]
    assert live["resamples"] == settings.monitoring.promotion_resamples and live["confidence"] == 0
    assert kept["evidence"]["basis"] == "offline" and "calibrated worse" in kept["reason"]
    assert champion_version(settings) == champion
    client.set_model_version_tag(name, challenger, "ece", "0.011")
    dry = _promote(retrained, "--dry-run")
    assert dry["promote"] and not dry["promoted"] and champion_version(settings) == champion
    done = _promote(retrained)
    assert done["promoted"] and champion_version(settings) == challenger
    assert champion_version(settings, alias=CHALLENGER) is None
    runs = mlflow.search_runs(experiment_names=["lead-propensity-promotions"], output_format="list")
    assert [run.data.tags["champion"] for run in runs] == [challenger]
    assert runs[0].data.metrics["challenger_pr_auc"] == 0.30 and runs[0].data.tags["basis"] == "offline"


def test_fuzzing_ingest_and_outcomes_on_a_world_of_their_own_finds_no_5xx(retrained, service):
    """The routes that store what they are sent (left out of test_serving's fuzz, whose world the
    other modules read) fuzzed here, on this module's copy: as an admin, every case answers with
    a status the route documents and a body in its schema, never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    from leadscore.serving.service import app

    app.openapi_schema = None
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app).include(
        path_regex="^/(ingest|outcomes)")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {operation.path for operation in operations}
    assert "/outcomes" in paths and len([path for path in paths if path.startswith("/ingest/")]) >= 9
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_as_documented(case) -> None:
            case.call_and_validate(headers={"X-API-Key": "demo-admin-key"}, checks=checks)

        answers_as_documented()
