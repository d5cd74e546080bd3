import pandas as pd

from leadscore.identity.link import resolve_people


def _records(rows: list[dict]) -> pd.DataFrame:
    columns = ["source", "source_record_id", "email", "phone", "cookie_id", "contact_id",
               "user_id", "name_key"]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    return frame.astype("string")


def test_shared_email_links_records_transitively_through_phone():
    records = _records([
        {"source": "crm_contacts", "source_record_id": "C1", "email": "a@x.com", "contact_id": "C1",
         "name_key": "ann lee"},
        {"source": "form_fills", "source_record_id": "F1", "email": "a@x.com", "phone": "+861",
         "name_key": "ann lee"},
        {"source": "event_registrations", "source_record_id": "R1", "phone": "+861",
         "name_key": "ann lee"},
        {"source": "form_fills", "source_record_id": "F2", "email": "b@y.com", "name_key": "bob ray"},
    ])
    out = resolve_people(records, max_names=2)
    assert out["pid"].iloc[0] == out["pid"].iloc[1] == out["pid"].iloc[2]
    assert out["pid"].iloc[3] != out["pid"].iloc[0]
    assert out["rule"].iloc[3] == "singleton"


def test_shared_inbox_does_not_merge_different_people():
    names = ["ann lee", "bob ray", "cai wu"]
    records = _records([{"source": "form_fills", "source_record_id": f"F{i}",
                         "email": "info@x.com", "name_key": name} for i, name in enumerate(names)])
    out = resolve_people(records, max_names=2)
    assert out["pid"].nunique() == 3
    assert out["uses_shared_identifier"].all()


def test_web_only_cookie_is_anonymous_until_a_form_binds_it():
    records = _records([
        {"source": "web_sessions", "source_record_id": "S1", "cookie_id": "k1"},
        {"source": "web_sessions", "source_record_id": "S2", "cookie_id": "k2"},
        {"source": "form_fills", "source_record_id": "F1", "cookie_id": "k2", "email": "a@x.com",
         "name_key": "ann lee"},
    ])
    out = resolve_people(records, max_names=2)
    assert pd.isna(out["pid"].iloc[0]) and out["rule"].iloc[0] == "anonymous_cookie"
    assert out["pid"].iloc[1] == out["pid"].iloc[2]
    assert out["rule"].iloc[1] == "cookie_id"


def test_ids_are_stable_across_reruns_and_record_order():
    rows = [
        {"source": "crm_contacts", "source_record_id": "C1", "email": "a@x.com", "name_key": "a b"},
        {"source": "form_fills", "source_record_id": "F1", "email": "a@x.com", "name_key": "a b"},
        {"source": "form_fills", "source_record_id": "F2", "email": "c@x.com", "name_key": "c d"},
    ]
    first = resolve_people(_records(rows), 2)
    second = resolve_people(_records(rows[::-1]), 2)
    assert set(first["pid"]) == set(second["pid"])
    assert first["pid"].iloc[0] == second["pid"].iloc[1]


def test_a_switchboard_shared_by_two_people_links_nobody_at_the_strictest_setting():
    records = _records([
        {"source": "event_registrations", "source_record_id": "R1", "phone": "+86215540",
         "email": "lei@x.com", "name_key": "lei xiao"},
        {"source": "form_fills", "source_record_id": "F1", "phone": "+86215540",
         "email": "qiang@x.com", "name_key": "qiang tian"},
        {"source": "form_fills", "source_record_id": "F2", "email": "lei@x.com",
         "name_key": "lei xiao"},
    ])
    strict = resolve_people(records, max_names=1)
    assert strict["pid"].iloc[0] != strict["pid"].iloc[1]
    assert strict["pid"].iloc[0] == strict["pid"].iloc[2]
    assert strict["uses_shared_identifier"].iloc[:2].all()
