"""API keys to roles: who may call what, from config/access.yaml."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from leadscore.access.audit import AuditLog
from leadscore.access.auth import AccessList, AuthError, key_from_headers


@pytest.fixture(scope="module")
def access(settings) -> AccessList:
    return AccessList.load(settings.config_file(settings.serving.access_file))


def _refused(action) -> AuthError:
    with pytest.raises(AuthError) as refused:
        action()
    return refused.value


def test_each_demo_role_may_use_exactly_its_endpoints(access):
    expected = {"demo-crm-key": {"score"}, "demo-marketer-key": {"segments"},
                "demo-sales-R001": {"portrait"}, "demo-admin-key": {"score", "portrait", "segments"}}
    for key, permissions in expected.items():
        caller = access.caller(key)
        for permission in ("score", "portrait", "segments"):
            if permission in permissions:
                caller.require(permission)
            else:
                assert _refused(lambda c=caller, p=permission: c.require(p)).status == 403


def test_no_key_and_a_wrong_key_are_401(access):
    assert _refused(lambda: access.caller(None)).status == 401
    assert "X-API-Key" in _refused(lambda: access.caller("")).message
    assert _refused(lambda: access.caller("demo-crm-key ")).status == 401


def test_sales_see_their_own_accounts_only_and_admins_see_all(access):
    rep = access.caller("demo-sales-R007")
    assert rep.may_see_account_of("R007")
    assert not rep.may_see_account_of("R008") and not rep.may_see_account_of(None)
    assert access.caller("demo-admin-key").may_see_account_of("R008")


def test_a_key_may_be_listed_as_its_sha256_only(tmp_path):
    digest = hashlib.sha256(b"s3cret").hexdigest()
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump({"roles": {"crm": {"can": ["score"]}},
                                    "keys": [{"sha256": digest, "role": "crm", "name": "CRM"}]}))
    assert AccessList.load(path).caller("s3cret").role == "crm"
    assert "s3cret" not in path.read_text()


@pytest.mark.parametrize("config, message", [
    ({"roles": {"crm": {"can": ["scores"]}}, "keys": []}, "unknown permission"),
    ({"roles": {}, "keys": [{"key": "k", "role": "crm"}]}, "undefined role"),
    ({"roles": {"crm": {"can": []}}, "keys": [{"role": "crm"}]}, "exactly one of"),
])
def test_a_broken_access_file_names_the_problem(tmp_path, config, message):
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=message):
        AccessList.load(path)


def test_the_key_comes_from_the_header_or_a_bearer_token_never_a_cookie():
    assert key_from_headers({"x-api-key": "a", "authorization": "Bearer b"}) == "a"
    assert key_from_headers({"authorization": "Bearer b"}) == "b"
    assert key_from_headers({"authorization": "Basic xyz", "cookie": "leadscore_session=c"}) is None


def test_the_audit_log_appends_one_line_per_read(tmp_path, access):
    log = AuditLog(tmp_path / "serving" / "audit.jsonl")
    rep = access.caller("demo-sales-R001")
    log.record(rep, "portrait", "P1", 200, ["email:masked"])
    log.record(rep, "portrait", "P2", 403)
    entries = log.entries()
    assert [(e["pid"], e["status"], e["employee_id"]) for e in entries] == [("P1", 200, "R001"),
                                                                           ("P2", 403, "R001")]
    assert entries[0]["fields"] == ["email:masked"] and entries[0]["at"].endswith("+00:00")
