"""Accounts on the tiny world the pipeline built (which trains the account model after the lead
model): POST /score by cid and eid, the account page in a headless browser with the portrait's
ownership, masking and audit rules, the account score on a lead's portrait, the training
benchmark's `account` figures, and (last: it makes the stacked candidate champion) a stacked
account score that reads its people's online rows live."""

from __future__ import annotations

import gc
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from in_process import service_in_process

from leadscore.access.audit import AuditLog

pytestmark = pytest.mark.integration
CRM = {"X-API-Key": "demo-crm-key"}
URL = "http://leadscore.test"  # the browser's requests to it are answered by the app in this process


@pytest.fixture(scope="module")
def service(world):
    with service_in_process(world["config_file"]) as instance:
        yield instance


@pytest.fixture(scope="module")
def client(service) -> TestClient:
    from leadscore.serving.service import app

    return TestClient(app)


def test_what_a_worker_loaded_is_kept_out_of_the_collectors_full_passes(service):
    """A full pass over the identities and the middle layer's copy stopped a worker for 0.4 s."""
    assert gc.get_freeze_count() > 0


@pytest.fixture(scope="module")
def account(world) -> dict:
    """The owned company with the most engaged people, one of its people with an email, its group."""
    with duckdb.connect(str(world["root"] / "data" / "middle.duckdb"), read_only=True) as con:
        cid, owner, eid = con.execute("""
            SELECT c.cid, c.owner_rep_id, c.eid FROM company c JOIN person p USING (cid)
            JOIN interaction i USING (pid)
            WHERE c.owner_rep_id IS NOT NULL
              AND c.eid IN (SELECT eid FROM company GROUP BY eid HAVING count(*) > 1)
            GROUP BY ALL ORDER BY count(DISTINCT p.pid) DESC, c.cid LIMIT 1""").fetchone()
        pid, email = con.execute("SELECT pid, email FROM person WHERE cid = ? AND email IS NOT NULL "
                                 "ORDER BY pid LIMIT 1", [cid]).fetchone()
        group = [row[0] for row in con.execute("SELECT cid FROM company WHERE eid = ?", [eid]).fetchall()]
    return {"cid": cid, "owner": owner, "eid": eid, "pid": pid, "email": email, "group": group}


def test_a_company_is_scored_by_cid_as_the_account_champion_scores_its_online_row(client, service,
                                                                                  account, world):
    from leadscore.config import load_settings
    from leadscore.scoring.registry import load_champion
    from leadscore.serving.opportunities import IN_OPPORTUNITY

    answer = client.post("/score", json={"cid": account["cid"]}, headers=CRM)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    settings = load_settings(world["config_file"])
    model, spec, version = load_champion(settings, settings.training.account.registered_model)
    expected = _account_probability(service, settings, account["cid"], model, spec)
    assert body["cid"] == account["cid"] and body["model_version"] == version
    assert body["probability"] == pytest.approx(expected, abs=1e-6)
    assert body["tier"] in spec.tiers.best_first
    routing = IN_OPPORTUNITY if body["in_opportunity"] else spec.tiers.routing[body["tier"]].model_dump()
    assert body["routing"] == routing  # an account already in an opportunity is worked there
    families = [reason["family"] for reason in body["reasons_up"] + body["reasons_down"]]
    assert families and len(families) == len(set(families))  # one reason per behaviour or trait


def _people_chance(service, settings, cid: str) -> float:
    """1 - prod(1 - p) over the company's identified people's online rows, scored by the lead
    champion through scikit-learn (not the service's fast path)."""
    from leadscore.scoring.prepare import prepare
    from leadscore.scoring.registry import load_champion

    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        pids = [row[0] for row in con.execute(
            "SELECT pid FROM person WHERE cid = ? AND identified_at IS NOT NULL", [cid]).fetchall()]
    rows = service.features.read(pids)
    model, spec, _ = load_champion(settings)
    p = model.predict_proba(prepare(rows[rows["known"]], spec.features))[:, 1]
    return float(1 - np.prod(1 - p))


def _account_probability(service, settings, cid: str, model, spec) -> float:
    """The account model's probability of the company's online row (and, for a stacked model,
    its people's chance now), through scikit-learn."""
    from leadscore.scoring.prepare import prepare_for
    from leadscore.serving.account_scorer import read_accounts

    row = pd.DataFrame(read_accounts(service.features.store, [cid]).columns)
    if spec.offset is not None:
        row[spec.offset.column] = _people_chance(service, settings, cid)
    return float(model.predict_proba(prepare_for(row, spec))[:, 1][0])


def test_a_group_is_scored_from_its_companies(client, account):
    body = client.post("/score", json={"eid": account["eid"]}, headers=CRM).json()
    every = {c["cid"]: c["probability"] for c in body["companies"]}
    assert set(every) <= set(account["group"]) and len(every) >= 2
    free = {c["cid"]: c["probability"] for c in body["companies"] if c["in_opportunity"] is None}
    companies = free or every  # those in an opportunity are outside the model's population
    assert body["probability"] == pytest.approx(1 - np.prod([1 - p for p in companies.values()]), abs=1e-5)
    assert body["reasons_of"] == max(companies, key=companies.get)


def test_a_lead_and_an_account_in_an_open_opportunity_say_so_and_are_routed_there(client, world):
    """Outside the models' population (they learn from those without one): the answer says since
    when, routes it `in_opportunity`, keeps the model's reading; the pages say it in words."""
    with duckdb.connect(str(world["root"] / "data" / "middle.duckdb"), read_only=True) as con:
        opportunity, pid, cid, owner = con.execute("""
            SELECT o.opportunity_id, o.pid, o.cid, c.owner_rep_id FROM outcome o
            JOIN company c ON c.cid = o.cid JOIN person p ON p.pid = o.pid
            WHERE o.closed_at IS NULL AND p.identified_at IS NOT NULL AND c.owner_rep_id IS NOT NULL
              AND o.pid NOT IN (SELECT pid FROM outcome WHERE closed_at IS NULL AND pid IS NOT NULL
                                  AND opportunity_id <> o.opportunity_id)
            ORDER BY o.opportunity_created_at LIMIT 1""").fetchone()
        free = con.execute("""
            SELECT p.pid FROM person p WHERE p.identified_at IS NOT NULL AND p.cid IS NOT NULL
              AND p.cid NOT IN (SELECT cid FROM outcome WHERE closed_at IS NULL AND cid IS NOT NULL)
            ORDER BY p.pid LIMIT 1""").fetchone()[0]
    lead = client.post("/score", json={"pid": pid}, headers=CRM).json()
    assert lead["in_opportunity"]["opportunity_id"] == opportunity
    assert lead["routing"]["action"] == "in_opportunity"
    assert 0 < lead["probability"] < 1 and lead["tier"]  # the model's reading, kept for data scientists
    company = client.post("/score", json={"cid": cid}, headers=CRM).json()
    assert company["in_opportunity"] is not None and company["routing"]["action"] == "in_opportunity"
    other = client.post("/score", json={"pid": free}, headers=CRM).json()
    assert other["in_opportunity"] is None and other["routing"]["action"] != "in_opportunity"
    owner_key = {"X-API-Key": f"demo-sales-{owner}"}
    portrait = client.get(f"/portrait/{pid}?format=html", headers=owner_key).text
    assert "In an opportunity since" in portrait and "chance of an opportunity within" not in portrait
    page = client.get(f"/account/{cid}?format=html", headers=owner_key).text
    assert "In an opportunity since" in page and "opens an opportunity within" not in page


def test_unknown_accounts_are_404_a_role_without_scores_403_and_a_batch_takes_people_only(client, account):
    unknown = client.post("/score", json={"cid": "C_NO_SUCH"}, headers=CRM)
    assert unknown.status_code == 404 and "unknown cid 'C_NO_SUCH'" in unknown.json()["detail"]
    assert client.post("/score", json={"eid": "E_NO_SUCH"}, headers=CRM).status_code == 404
    sales = {"X-API-Key": f"demo-sales-{account['owner']}"}
    assert client.post("/score", json={"cid": account["cid"]}, headers=sales).status_code == 403
    both = client.post("/score", json={"cid": account["cid"], "pid": account["pid"]}, headers=CRM)
    assert both.status_code == 422
    batch = client.post("/score_batch", json={"items": [{"cid": account["cid"]}]}, headers=CRM)
    assert batch.status_code == 422 and "POST /score" in batch.text


def test_a_leads_portrait_shows_its_accounts_score(client, account):
    owner = {"X-API-Key": f"demo-sales-{account['owner']}"}
    portrait = client.get(f"/portrait/{account['pid']}", headers=owner).json()
    score = client.post("/score", json={"cid": account["cid"]}, headers=CRM).json()
    assert portrait["account_score"]["cid"] == account["cid"]
    assert portrait["account_score"]["score"] == score["score"]
    page = client.get(f"/portrait/{account['pid']}?format=html", headers=owner).text
    assert 'id="account-score"' in page and f'href="/account/{account["cid"]}"' in page


def _served_by(client: TestClient):
    """A browser route handler that sends every request to the app in this process."""
    def handle(route) -> None:
        request = route.request
        answer = client.request(request.method, request.url.removeprefix(URL), headers=request.headers,
                                content=request.post_data_buffer, follow_redirects=False)
        headers = {k: v for k, v in answer.headers.items() if k not in ("content-length", "content-encoding")}
        route.fulfill(status=answer.status_code, headers=headers, body=answer.content)
    return handle


def _open(browser, client: TestClient, key: str, path: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  extra_http_headers={"X-API-Key": key})
    page = context.new_page()
    page.route(f"{URL}/**", _served_by(client))
    page.goto(f"{URL}{path}")
    return page


def test_the_owning_rep_reads_the_account_page_in_a_browser_masked_and_another_rep_cannot(
        client, service, account, browser, tmp_path):
    cid, owner = account["cid"], account["owner"]
    other = "R001" if owner != "R001" else "R002"
    page = _open(browser, client, f"demo-sales-{owner}", f"/account/{cid}")
    assert page.inner_text("#viewer") == owner
    assert account["email"] not in page.content()  # every contact masked
    local, domain = account["email"].split("@")
    assert f"{local[0]}***@{domain}" in page.inner_text("#people")
    as_json = client.get(f"/account/{cid}", headers={"X-API-Key": f"demo-sales-{owner}"}).json()
    assert page.inner_text("#engaged-total") == str(as_json["engaged_total"])
    assert as_json["missing_roles"] == [role["role"] for role in as_json["committee"] if not role["engaged"]]
    assert ("Missing:" in page.inner_text("#missing")) == bool(as_json["missing_roles"])
    page.screenshot(path=str(tmp_path / "account.png"), full_page=True)
    assert (tmp_path / "account.png").stat().st_size > 20_000
    refused = _open(browser, client, f"demo-sales-{other}", f"/account/{cid}")
    # another rep's company is answered as an unknown one, word for word
    assert refused.inner_text("#message") == f"unknown cid '{cid}': no such company"
    audit = AuditLog(service.settings.serving_dir / "audit.jsonl").entries()
    reads = [(e["employee_id"], e["status"]) for e in audit if e["action"] == "account" and e["pid"] == cid]
    assert (owner, 200) in reads and (other, 404) in reads


def test_the_training_benchmark_compares_the_account_model_with_its_peoples_best_score(world):
    """bench training's `account` figures, for the account and lead champions the pipeline
    registered (the benchmark trains its own in the same way): the model's equal those logged
    with it on the same test window."""
    from leadscore.benchmarks.training import account_comparison
    from leadscore.config import load_settings
    from leadscore.features.build import read_manifest
    from leadscore.features.store import open_store
    from leadscore.scoring.prepare import prepare, prepare_for
    from leadscore.scoring.registry import CHAMPION, champion_of, load_champion, use_store
    from leadscore.training.account_people import PEOPLE_ANY, people_any
    from leadscore.training.accounts import account_frame
    from leadscore.training.dataset import split_by_time
    from leadscore.training.train import training_frame

    settings = load_settings(world["config_file"])
    store, manifest = open_store(settings), read_manifest(settings.feature_data_dir)
    accounts = split_by_time(account_frame(settings, store, manifest), settings.training).test
    people = split_by_time(training_frame(settings, store, manifest), settings.training).test
    name = settings.training.account.registered_model
    account_model, account_spec, _ = load_champion(settings, name)
    lead_model, lead_spec, _ = load_champion(settings)
    lead_probability = lead_model.predict_proba(prepare(people, lead_spec.features))[:, 1]
    # a stacked champion adds its people's chance by the lead champion, as training gave it
    accounts[PEOPLE_ANY] = people_any(accounts, people, lead_probability)
    account_probability = account_model.predict_proba(prepare_for(accounts, account_spec))[:, 1]
    figures = account_comparison(accounts, account_probability, people, lead_probability)
    client = use_store(settings)
    logged = client.get_run(champion_of(client, name, CHAMPION).run_id).data.metrics
    assert figures["model"] == pytest.approx({key: logged[key] for key in ("roc_auc", "pr_auc", "ece")})
    assert set(figures["baseline"]) == {"roc_auc", "pr_auc", "ece"}
    assert figures["baseline"] != figures["model"]
    assert 0 < figures["baseline"]["pr_auc"] <= 1 and figures["test_rows"] == len(accounts)


def _stacked_champion(settings) -> None:
    """The account champion made the stacked candidate of the pipeline's account training, where
    the validation window chose another (as `rollback` moves the alias)."""
    import mlflow
    from leadscore.scoring.registry import CHAMPION, champion_of, read_spec, use_store

    client = use_store(settings)
    name = settings.training.account.registered_model
    champion = champion_of(client, name)
    if read_spec(champion.run_id, name, champion.version).model_kind == "stacked":
        return
    experiment = client.get_experiment_by_name("account-propensity")
    run, = client.search_runs([experiment.experiment_id], "tags.model_kind = 'stacked'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    client.set_registered_model_alias(name, CHAMPION, version.version)


def _an_undecided_company(client, settings) -> tuple[str, str, str]:
    """(cid, pid, email): a company whose account score is far from certain (the chance that any
    of a large account's people converts is close to 1), and one of its people with an email."""
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        people = con.execute("""
            SELECT cid, min(pid), min_by(email, pid) FROM person
            WHERE cid IS NOT NULL AND email IS NOT NULL AND identified_at IS NOT NULL
            GROUP BY cid ORDER BY count(*), cid LIMIT 40""").fetchall()
    for cid, pid, email in people:
        if client.post("/score", json={"cid": cid}, headers=CRM).json().get("probability", 1) < 0.5:
            return cid, pid, email
    raise AssertionError("every small company's account score is 0.5 or more")


def test_a_stacked_account_score_reads_its_people_live_and_rises_when_one_of_them_engages(
        client, service, world):
    from leadscore.clock import open_clock
    from leadscore.config import load_settings
    from leadscore.scoring.registry import load_champion

    settings = load_settings(world["config_file"])
    _stacked_champion(settings)
    assert service.accounts.watcher.check() or service.accounts.scorer.kind == "stacked"
    model, spec, version = load_champion(settings, settings.training.account.registered_model)
    cid, pid, email = _an_undecided_company(client, settings)
    before = client.post("/score", json={"cid": cid}, headers=CRM).json()
    assert before["model_kind"] == "stacked" and before["model_version"] == version
    assert before["probability"] == pytest.approx(
        _account_probability(service, settings, cid, model, spec), abs=1e-6)
    reasons = before["reasons_up"] + before["reasons_down"]
    told = [r["text"] for r in reasons if r["family"] == "people_scores"]
    assert len(told) == 1 and told[0].startswith("its people's scores: ")
    # one of its people asks sales to get in touch, three times, through the live ingest
    at = open_clock(settings).now() - timedelta(hours=3)
    fills = [{"form_fill_id": f"FF-ACCOUNT-{i}", "submitted_at": (at + timedelta(minutes=i)).isoformat(),
              "form_type": "contact_sales", "email": email} for i in range(3)]
    answer = client.post("/ingest/form_fills", json=fills, headers={"X-API-Key": "demo-ingest-key"})
    assert answer.status_code == 200 and answer.json()["accepted"] == 3, answer.text
    assert {record["pid"] for record in answer.json()["records"]} == {pid}
    after = client.post("/score", json={"cid": cid}, headers=CRM).json()
    assert after["probability"] > before["probability"]
    assert after["probability"] == pytest.approx(
        _account_probability(service, settings, cid, model, spec), abs=1e-6)
