import logging

import numpy as np
import pandas as pd
import pytest

from leadscore.identity import probabilistic as prob
from leadscore.identity.mapping import TableMapping, standardise_table
from leadscore.identity.standardise import StandardiseRules

GIVEN = ["amelia", "oliver", "isla", "jack", "mia", "noah", "ava", "leo", "grace", "henry", "chloe",
         "lucas", "ella", "james", "ruby", "harry", "zoe", "ethan", "lily", "max"]
SURNAMES = ["smith", "jones", "brown", "wilson", "taylor", "nguyen", "martin", "white", "kelly",
            "walker", "young", "king", "hall", "wright", "green", "baker", "adams", "clark", "lee", "ryan"]
MAPPING = TableMapping(columns={"given_name": "given", "surname": "family", "date_of_birth": "dob",
                                "postcode": "pc", "exact_id": "ssn"})
NAME_LEVELS = [
    {"all_of": [{"missing": "given_name"}, {"missing": "surname"}]},
    {"exact": "full_name", "tf": True},
    {"swapped": ["given_name", "surname"]},
    {"all_of": [{"jaro_winkler": "given_name", "threshold": 0.9},
                {"jaro_winkler": "surname", "threshold": 0.9}]},
    {"exact": "surname", "tf": True},
    {"exact": "given_name"},
    "else",
]


def _model(name_levels: list) -> prob.ModelConfig:
    return prob.ModelConfig.from_config({
        "comparisons": [
            {"name": "name", "levels": name_levels},
            {"name": "date_of_birth", "levels": [
                {"missing": "date_of_birth"}, {"exact": "date_of_birth"},
                {"damerau_levenshtein": "date_of_birth", "distance": 1}, "else"]},
            {"name": "exact_id", "levels": [
                {"missing": "exact_id"}, {"exact": "exact_id"},
                {"damerau_levenshtein": "exact_id", "distance": 1}, "else"]},
            {"name": "postcode", "levels": [{"missing": "postcode"}, {"exact": "postcode"}, "else"]},
            {"name": "email", "levels": [{"missing": "email"}, {"exact": "email"}, "else"]},
        ],
        "blocking_rules": [["date_of_birth"], ["exact_id"], ["name_sdx_key"]],
        "training": {"prior": {"deterministic_rules": [["exact_id", "date_of_birth"]], "recall": 0.8},
                     "u": {"max_pairs": 1e5, "seed": 7},
                     "em": {"blocking_rules": [["date_of_birth"], ["postcode"]]}},
    })


def _typo(text: str, rng: np.random.Generator) -> str:
    at = int(rng.integers(len(text)))
    return text[:at] + "x" + text[at + 1:]


def _people(n_people: int = 300, seed: int = 3) -> pd.DataFrame:
    """People and a dirty copy of two in three of them: a typo in one field, or the
    given name and surname swapped; the truth is kept in `person`."""
    rng = np.random.default_rng(seed)
    people = pd.DataFrame({
        "person": np.arange(n_people),
        "given": rng.choice(GIVEN, n_people), "family": rng.choice(SURNAMES, n_people),
        "dob": [f"{y}-{m:02d}-{d:02d}" for y, m, d in zip(rng.integers(1940, 2000, n_people),
                                                          rng.integers(1, 13, n_people),
                                                          rng.integers(1, 29, n_people), strict=True)],
        "pc": rng.integers(2000, 2100, n_people).astype(str),
        "ssn": rng.integers(1_000_000, 9_999_999, n_people).astype(str),
    })
    copies = people[rng.random(n_people) < 2 / 3].copy()
    for row in copies.index:
        field = rng.choice(["given", "family", "dob", "pc", "ssn", "swap"])
        if field == "swap":
            copies.loc[row, ["given", "family"]] = copies.loc[row, ["family", "given"]].to_numpy()
        else:
            copies.loc[row, field] = _typo(copies.loc[row, field], rng)
    return pd.concat([people, copies], ignore_index=True)


@pytest.fixture(scope="module")
def people_table() -> tuple[pd.DataFrame, pd.Series]:
    raw = _people()
    return standardise_table(raw, MAPPING, StandardiseRules()), raw["person"]


@pytest.fixture(scope="module")
def swap_linker(people_table):
    return prob.fit([people_table[0]], _model(NAME_LEVELS))


def _swapped_pair(table: pd.DataFrame, person: pd.Series) -> tuple[dict, dict]:
    for _, group in table.groupby(person.to_numpy()):
        if len(group) == 2 and group["given_name"].iloc[0] == group["surname"].iloc[1] \
                and group["given_name"].iloc[0] != group["surname"].iloc[0]:
            return group.iloc[0].to_dict(), group.iloc[1].to_dict()
    raise AssertionError("the generated table has no swapped pair")


def _total(explained: pd.DataFrame) -> float:
    return explained.set_index("comparison").loc["total", "match_weight"]


def test_swap_level_scores_a_swapped_pair_higher(people_table, swap_linker):
    table, person = people_table
    record_a, record_b = _swapped_pair(table, person)
    without_swap = prob.fit([table], _model([level for level in NAME_LEVELS if "swapped" not in level]))
    with_level = prob.explain_pair(swap_linker, record_a, record_b)
    without_level = prob.explain_pair(without_swap, record_a, record_b)
    name_row = with_level.set_index("comparison").loc["name"]
    assert name_row["level"] == "swapped given_name / surname" and name_row["match_weight"] > 0
    assert _total(with_level) > _total(without_level) + 5


def test_explain_pair_rows_add_up_to_the_total(people_table, swap_linker):
    table, person = people_table
    explained = prob.explain_pair(swap_linker, *_swapped_pair(table, person))
    assert list(explained["comparison"]) == ["prior", "name", "date_of_birth", "exact_id", "postcode",
                                             "total"]  # email is empty in this table: skipped
    parts, total = explained["match_weight"].iloc[:-1].sum(), explained["match_weight"].iloc[-1]
    assert parts == pytest.approx(total, abs=1e-6)


def test_predictions_find_the_duplicates_and_are_repeatable(people_table, swap_linker):
    table, person = people_table
    pairs = prob.predict_pairs(swap_linker, threshold=0.5)
    assert list(pairs.columns) == prob.PAIR_COLUMNS
    same = person.to_numpy()[pairs["id_l"]] == person.to_numpy()[pairs["id_r"]]
    assert same.mean() > 0.95 and len(pairs) > 150
    again = prob.predict_pairs(prob.fit([table], _model(NAME_LEVELS)), threshold=0.5)
    pd.testing.assert_frame_equal(pairs, again)


def test_link_mode_puts_left_records_in_id_l(people_table):
    table, person = people_table
    left, right = table.iloc[:300], table.iloc[300:]
    pairs = prob.predict_pairs(prob.fit([left, right], _model(NAME_LEVELS)), threshold=0.5)
    assert pairs["id_l"].isin(left["record_id"]).all() and pairs["id_r"].isin(right["record_id"]).all()
    truth = person.to_numpy()
    assert (truth[pairs["id_l"]] == truth[pairs["id_r"]]).mean() > 0.95


def test_cluster_connects_pairs_above_threshold_and_keeps_singletons():
    pairs = pd.DataFrame({"id_l": [1, 2, 3], "id_r": [2, 3, 4], "match_weight": [3.0, 1.0, -1.0],
                          "match_probability": [0.9, 0.6, 0.4]})
    clusters = prob.cluster(pairs, 0.5, ids=[1, 2, 3, 4, 5])
    assert dict(zip(clusters["id"], clusters["cluster_id"], strict=True)) == {1: 1, 2: 1, 3: 1, 4: 4, 5: 5}


def test_oversized_cluster_is_split_on_stronger_edges():
    pairs = pd.DataFrame({"id_l": [1, 2], "id_r": [2, 3], "match_weight": [9.0, 1.0],
                          "match_probability": [0.99, 0.6]})
    config = prob.ClusterConfig(threshold=0.5, max_cluster_size=2, stricter_thresholds=(0.9,))
    clusters = prob.cluster(pairs, ids=[1, 2, 3], config=config)
    assert dict(zip(clusters["id"], clusters["cluster_id"], strict=True)) == {1: 1, 2: 1, 3: 3}


def test_splitting_an_oversized_group_is_said_with_its_size(caplog):
    pairs = pd.DataFrame({"id_l": [1, 2, 3], "id_r": [2, 3, 4], "match_weight": [9.0, 1.0, 9.0],
                          "match_probability": [0.99, 0.6, 0.99]})
    config = prob.ClusterConfig(threshold=0.5, max_cluster_size=3, stricter_thresholds=(0.9,))
    with caplog.at_level(logging.WARNING):
        prob.cluster(pairs, ids=[1, 2, 3, 4, 5], config=config)
    assert "1 group(s) of more than max_cluster_size (3)" in caplog.text and "largest had 4" in caplog.text


def test_rules_on_columns_a_table_leaves_empty_are_set_aside(caplog):
    table = pd.DataFrame({"surname": ["a", "b"], "postcode": [None, None], "exact_id": [None, None]})
    rules = [["surname"], ["substr(exact_id, 1, 4)"], "l.postcode = r.postcode", ["surname", "postcode"]]
    assert prob.rule_columns(rules[1]) == {"exact_id"} and prob.rule_columns(rules[2]) == {"postcode"}
    with caplog.at_level(logging.WARNING):
        assert prob.usable_rules(rules, [table], "blocking rules") == [["surname"]]
    assert "blocking rules set aside" in caplog.text


def test_threshold_report_counts_pairs_and_groups_at_each_threshold():
    from leadscore.identity.match_report import probability_histogram, threshold_report

    pairs = pd.DataFrame({"id_l": [1, 2, 4], "id_r": [2, 3, 5], "match_weight": [9.0, 1.0, 3.0],
                          "match_probability": [0.999, 0.6, 0.95]})
    report = threshold_report(pairs, [1, 2, 3, 4, 5, 6], prob.ClusterConfig(), False, (0.5, 0.9, 0.99))
    assert report.to_dict("records") == [
        {"threshold": 0.5, "pairs": 3, "clusters": 3, "records_in_groups": 5, "largest_group": 3},
        {"threshold": 0.9, "pairs": 2, "clusters": 4, "records_in_groups": 4, "largest_group": 2},
        {"threshold": 0.99, "pairs": 1, "clusters": 5, "records_in_groups": 2, "largest_group": 2}]
    histogram = probability_histogram(pairs)
    assert histogram["pairs"].sum() == 3 and histogram.loc["0.9-1.0", "pairs"] == 2


def test_cluster_in_link_mode_keeps_the_two_tables_apart():
    pairs = pd.DataFrame({"id_l": [1], "id_r": [1], "match_weight": [5.0], "match_probability": [0.97]})
    clusters = prob.cluster(pairs, 0.5, ids=[("left", 1), ("right", 1), ("right", 2)], link=True)
    assert list(clusters.columns) == ["source", "id", "cluster_id"]
    assert clusters["cluster_id"].tolist() == ["left:1", "left:1", "right:2"]


def test_resolve_on_an_empty_table_warns_and_returns_nothing(people_table, caplog):
    empty = people_table[0].iloc[:0]
    with caplog.at_level(logging.WARNING):
        pairs, clusters, linker = prob.resolve([empty], _model(NAME_LEVELS))
    assert pairs.empty and clusters.empty and linker is None
    assert "empty" in caplog.text


@pytest.mark.parametrize(("spec", "sql"), [
    ({"swapped": ["given_name", "surname"]},
     '"given_name_l" = "surname_r" AND "surname_l" = "given_name_r"'),
    ({"crossed": ["address_1", "address_2"]},
     '"address_1_l" = "address_2_r" OR "address_2_l" = "address_1_r"'),
])
def test_cross_column_levels(spec, sql):
    assert prob.build_level(spec).create_sql(prob.DuckDBAPI.sql_dialect) == sql


def test_a_level_needs_exactly_one_kind():
    with pytest.raises(ValueError, match="exactly one"):
        prob.build_level({"exact": "surname", "jaro": "surname"})


def test_comparisons_on_empty_columns_are_skipped(people_table):
    active = prob.active_comparisons(_model(NAME_LEVELS), [people_table[0]])
    assert [spec["name"] for spec in active] == ["name", "date_of_birth", "exact_id", "postcode"]
