from pathlib import Path

import pandas as pd
import pytest

from leadscore.identity import fuzzy
from leadscore.identity.standardise import StandardiseRules, name_key

CONFIG = Path(__file__).parents[3] / "config" / "mappings" / "person_profiles.yaml"
RULES = StandardiseRules(free_mail_domains=frozenset({"gmail.com", "qq.com"}),
                         nicknames={"bill": "william"})
COLUMNS = ["pid", "first_name_std", "last_name_std", "email", "phone", "company_name_std",
           "work_domain", "title"]


def _records(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS).astype("string")
    return frame.assign(name_key=name_key(frame["first_name_std"], frame["last_name_std"]))


@pytest.fixture
def records() -> pd.DataFrame:
    return _records([
        # one person: a CRM contact and a duplicate under a nickname with a gmail address
        ("P1", "william", "smith", "william.smith@acme.com", "+8613800000001", "acme", "acme.com", "cto"),
        ("P1", "william", "smith", "william.smith@acme.com", None, "acme", "acme.com", None),
        ("P2", "william", "smith", "bill.smith77@gmail.com", None, "acme", None, "cto"),
        # two namesakes at other firms
        ("P3", "wei", "zhang", "wei.zhang@veltrix.com", None, "veltrix", "veltrix.com", None),
        ("P4", "wei", "zhang", "wei.zhang@noraium.com", None, "noraium", "noraium.com", None),
        # namesakes at one firm: 'lei.ye@' and 'lei.ye2@'
        ("P5", "lei", "ye", "lei.ye@hexa.com", None, "hexa", "hexa.com", None),
        ("P6", "lei", "ye", "lei.ye2@hexa.com", None, "hexa", "hexa.com", None),
        ("P7", None, None, "info@hexa.com", None, None, "hexa.com", None),
    ])


def _pairs(*pids: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"id_l": [a for a, _ in pids], "id_r": [b for _, b in pids],
                         "match_probability": [0.99] * len(pids)})


def test_profiles_one_row_per_named_cluster(records):
    profiles = fuzzy.cluster_profiles(records).set_index("pid")
    assert sorted(profiles.index) == ["P1", "P2", "P3", "P4", "P5", "P6"]
    assert profiles.loc["P1", "phone"] == "+8613800000001"


def test_nickname_personal_email_duplicate_passes_the_guards(records):
    table = fuzzy.profile_table(fuzzy.cluster_profiles(records), CONFIG, RULES)
    assert len(fuzzy.guarded(_pairs(("P1", "P2")), table)) == 1


@pytest.mark.parametrize("pair", [("P3", "P4"), ("P5", "P6"), ("P1", "P3")])
def test_namesakes_or_other_names_are_vetoed(records, pair):
    table = fuzzy.profile_table(fuzzy.cluster_profiles(records), CONFIG, RULES)
    assert fuzzy.guarded(_pairs(pair), table).empty


def test_only_mutual_best_partners_merge():
    pairs = pd.DataFrame({"id_l": ["A", "A"], "id_r": ["B", "C"], "match_probability": [0.99, 0.95]})
    assert fuzzy.best_partners(pairs)[["id_l", "id_r"]].values.tolist() == [["A", "B"]]


def test_merge_pids_takes_the_smallest_pid_of_each_group():
    pids = pd.Series(["P3", "P1", "P2", "P4", None], dtype="string")
    merges = pd.DataFrame({"pid_a": ["P3", "P2"], "pid_b": ["P2", "P1"], "match_probability": [0.9, 0.9]})
    assert fuzzy.merge_pids(pids, merges).tolist() == ["P1", "P1", "P1", "P4", pd.NA]


def test_a_crm_contact_takes_its_account_s_name_so_a_namesake_at_another_firm_is_vetoed():
    contact = _records([("P8", "wei", "zhang", None, None, None, None, "cfo")]).assign(account_id="A1")
    records = pd.concat([contact, _records([("P3", "wei", "zhang", "wei.zhang@veltrix.com", None, "veltrix",
                                             "veltrix.com", None)]).assign(account_id=pd.NA)])
    names = pd.Series({"A1": "noraium"})
    with_names = fuzzy.with_account_names(records, names)
    bare = fuzzy.profile_table(fuzzy.cluster_profiles(records), CONFIG, RULES)
    named = fuzzy.profile_table(fuzzy.cluster_profiles(with_names), CONFIG, RULES)
    assert len(fuzzy.guarded(_pairs(("P8", "P3")), bare)) == 1  # a bare name contradicts nothing
    assert fuzzy.guarded(_pairs(("P8", "P3")), named).empty
    assert with_names["company_name_std"].tolist() == ["noraium", "veltrix"]


def _table(rows: list[tuple], shared_keys: frozenset[str] = frozenset()) -> pd.DataFrame:
    return fuzzy.profile_table(fuzzy.cluster_profiles(_records(rows)), CONFIG, RULES, shared_keys)


SUSAN = ("P1", "susan", "mueller", "smueller@poliford.com", "+4915756091134", "poliford", "poliford.com",
         None)
SUSAN_FROM_THE_TEAM_INBOX = ("P2", "susan", "mueller", "contact@poliford.com", "+494039640832", "poliford",
                             "poliford.com", None)


def test_a_team_inbox_and_switchboard_held_back_as_shared_contradict_no_one():
    shared = frozenset({"email:contact@poliford.com", "phone:+494039640832"})
    assert fuzzy.guarded(_pairs(("P1", "P2")), _table([SUSAN, SUSAN_FROM_THE_TEAM_INBOX])).empty
    assert len(fuzzy.guarded(_pairs(("P1", "P2")), _table([SUSAN, SUSAN_FROM_THE_TEAM_INBOX], shared))) == 1


@pytest.mark.parametrize(("other_phone", "kept"), [("+8615756091134", 1), ("+4915756091135", 0)])
def test_phones_contradict_only_when_their_digits_differ_beyond_the_country_code(other_phone, kept):
    # the same mobile written without a country code is read in the default region (+86)
    crm = ("P2", "susan", "mueller", "smueller@poliford.com", other_phone, "poliford", "poliford.com", None)
    assert len(fuzzy.guarded(_pairs(("P1", "P2")), _table([SUSAN, crm]))) == kept


@pytest.mark.parametrize(("a", "b", "kept"), [
    ("aweber@poliford.com", "awber@poliford.com", 1),  # a typo: one letter dropped
    ("phill@flouium.com", "phil2@flouium.com", 0),  # a namesake's numbered address
    ("matthewwalker22@gmail.com", "matthewwalker26@gmail.com", 0),  # personal, one digit apart
])
def test_an_edit_that_changes_the_digits_of_an_address_is_never_a_typo(a, b, kept):
    domain = a.split("@")[1]
    work = None if domain == "gmail.com" else domain
    rows = [("P1", "ann", "lee", a, None, "acme", work, None),
            ("P2", "ann", "lee", b, None, "acme", work, None)]
    assert len(fuzzy.guarded(_pairs(("P1", "P2")), _table(rows))) == kept


def test_a_bare_crm_contact_joins_the_one_identified_person_of_its_name_at_its_employer():
    rows = [("P1", "fang", "guo", "fguo@xanaics.cn", None, "xanaics", "xanaics.cn", None),
            ("P2", "fang", "guo", None, None, "xanaics", None, "strategy lead"),  # name and account only
            ("P3", "fang", "guo", "contact@xanaics.cn", None, "xanaics", "xanaics.cn", None)]  # team inbox
    records = _records(rows)
    shared = frozenset({"email:contact@xanaics.cn"})
    identified = fuzzy.identified_pids(records, shared)
    assert list(identified) == ["P1"]
    pairs = fuzzy.bare_at_employer(_table(rows, shared), identified)
    assert sorted(map(tuple, pairs[["id_l", "id_r"]].to_numpy().tolist())) == [("P1", "P2"), ("P1", "P3")]


def test_a_bare_contact_stays_apart_where_two_people_of_its_name_work_at_its_employer():
    rows = [("P1", "lei", "ye", "lei.ye@hexa.com", None, "hexa", "hexa.com", None),
            ("P2", "lei", "ye", "lei.ye2@hexa.com", None, "hexa", "hexa.com", None),
            ("P3", "lei", "ye", None, None, "hexa", None, None),
            ("P4", "lei", "ye", None, None, "veltrix", None, None)]  # alone at its employer
    assert fuzzy.bare_at_employer(_table(rows), fuzzy.identified_pids(_records(rows))).empty


def test_one_cluster_merging_several_bare_ones_gives_every_merged_record_its_pid(monkeypatch):
    from leadscore.identity import resolve

    pairs = pd.DataFrame({"pid_a": ["P1", "P1"], "pid_b": ["P2", "P3"], "match_probability": [0.04, 0.3],
                          "rule": ["name_at_employer", "fuzzy"]})
    why = pd.DataFrame({"pid_a": ["P1", "P1"], "pid_b": ["P2", "P3"], "comparison": ["name", "name"],
                        "level": ["exact", "exact"], "match_weight": [9.5, 9.5]})
    monkeypatch.setattr(fuzzy, "fuzzy_merges", lambda *args, **kwargs: fuzzy.FuzzyMerges(pairs, why))
    records = pd.DataFrame({"pid": pd.array(["P1", "P2", "P3", "P4"], dtype="string"),
                            "rule": ["email", "contact_id", "cookie_id", "email"], "probability": 1.0})
    rules = resolve.IdentityRules(StandardiseRules(), {}, set(), 1, CONFIG)
    merged, comparisons = resolve.apply_fuzzy_merges(records, rules)
    assert merged["pid"].tolist() == ["P1", "P1", "P1", "P4"]
    assert merged["rule"].tolist() == ["email", "name_at_employer", "fuzzy", "email"]
    assert merged["probability"].tolist() == [1.0, 0.04, 0.3, 1.0]
    assert comparisons["pid"].tolist() == ["P1", "P1"]
