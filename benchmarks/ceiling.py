"""The ceiling of the lead model on the synthetic world: how well the hidden truth itself ranks
the test window, knowing every buying cycle begun by each snapshot time.

The world (synth/cycles.py, synth/outcomes.py) gives each buying cycle an opportunity
probability `p_opportunity` from its committee's fit and engagement, dates its opportunity a
uniform `OPPORTUNITY_LAG_DAYS` after its start, and lands it on the committee's most engaged
member; cycles come to a company at a rate that rises with its firmographic fit and headcount
(`cycle_weights`), led by a member picked by role (a Gumbel draw: the leader is the company's
person with probability softmax(1.5 x role fit)); besides the cycles, `INBOUND_SHARE` of all
opportunities come from nowhere, to people in proportion to 0.3 + their fit. The truth's
propensity of a person at a snapshot time t is then

    1 - prod over the cycles begun by t that the person would carry (1 - p q / (1 - p (1 - q)))
      * exp(-(cycles to come + inbound))

with q the chance the cycle's opportunity comes after t (a snapshot keeps only people with no
open opportunity, hence the conditioning on none having come yet); "cycles to come" the expected
number of cycles that start after t at the person's company, are led by them and open an
opportunity within the horizon (the company's cycle rate x the person's chance to lead x the
cycle's p at the person's fit x the days left after the mean lag); "inbound" the expected
inbound opportunities. It knows every cycle begun by the snapshot's time and the world's own
rates, never which way a draw went: what a model that knew every cycle could reach. Measured on
the default world it is a ceiling for PR-AUC (0.259 against LightGBM's 0.179) but not for
ROC-AUC (0.857 against 0.860): for the cycles still to come it knows only the world's average
rates, and the models rank those people a little better from their own behaviour. (A cycle to
come is counted for its leader only, who carries 85% of them.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import average_precision_score, roc_auc_score

from leadscore.benchmarks.identity import true_people_of_pids
from leadscore.synth import vocab
from leadscore.synth.cycles import OPPORTUNITY_LAG_DAYS, OpportunityModel
from leadscore.synth.outcomes import INBOUND_SHARE
from leadscore.synth.people import company_fit
from leadscore.synth.world import CYCLES_PER_PERSON_YEAR

DAY = pd.Timedelta(days=1)


def carriers(cycles: pd.DataFrame, probability: str = "p_opportunity") -> pd.DataFrame:
    """One row per cycle: its start, probability (the truth's column `probability`, as
    `p_opportunity`) and the member who would carry its opportunity (the most engaged before
    it, then the committee's leader), as synth decides."""
    ranked = cycles.sort_values(["cycle_id", "events", "member_rank"], ascending=[True, False, True])
    carried = ranked.drop_duplicates("cycle_id")[["cycle_id", "person_key", "start", probability]]
    return carried.rename(columns={probability: "p_opportunity"})


def cycle_propensity(rows: pd.DataFrame, carried: pd.DataFrame) -> np.ndarray:
    """Per row (person_key, t): the chance that a cycle begun by t lands an opportunity on the
    person in the horizon (every such opportunity comes within 56 days of its start, inside a
    90-day horizon), given none has come yet."""
    pairs = rows.reset_index(names="row").merge(carried, on="person_key")
    pairs = pairs[pairs["start"] <= pairs["t"]]
    low, high = OPPORTUNITY_LAG_DAYS
    elapsed = ((pairs["t"] - pairs["start"]) / DAY).to_numpy()
    q = np.clip((high - elapsed) / (high - low), 0.0, 1.0)
    p = pairs["p_opportunity"].to_numpy()
    hit = p * q / np.maximum(1 - p * (1 - q), 1e-12)
    missed = pd.Series(np.log1p(-np.minimum(hit, 1 - 1e-12)), index=pairs["row"]).groupby(level=0).sum()
    return 1 - np.exp(missed.reindex(range(len(rows)), fill_value=0.0).to_numpy())


def inbound_rate(cycles: pd.DataFrame, people: pd.DataFrame) -> float:
    """Inbound opportunities per day per unit of weight (0.3 + fit), as synth draws them."""
    carried = cycles[cycles["is_opportunity_contact"]]
    days = (carried["opportunity_at"].max() - carried["opportunity_at"].min()) / DAY
    inbound = len(carried) * INBOUND_SHARE / (1 - INBOUND_SHARE)
    return inbound / max(days, 1.0) / float((0.3 + people["fit"]).sum())


def expected_chance(fit: pd.Series, cycles: pd.DataFrame) -> pd.Series:
    """A cycle's opportunity probability (OpportunityModel, without its noise) for a committee of
    this fit and the world's median engagement per cycle."""
    model, engaged = OpportunityModel(), np.log1p(cycles.drop_duplicates("cycle_id")["events"].median())
    logit = model.intercept + model.fit * fit + model.engagement * engaged + model.interaction * fit * engaged
    return 1 / (1 + np.exp(-logit))


def cycles_to_come(people: pd.DataFrame, companies: pd.DataFrame, cycles: pd.DataFrame,
                   horizon_days: int) -> pd.Series:
    """Per person: the expected cycles that start after a snapshot at their company, are led by
    them and open an opportunity within the horizon (the world's rates, synth/cycles.py)."""
    staff = people["company_key"].value_counts().reindex(companies["company_key"]).fillna(0).to_numpy()
    firms = companies.assign(funding_ord=companies["funding_stage"].map(
        {stage: k for k, stage in enumerate(vocab.FUNDING_STAGES)}))
    weight = np.exp(company_fit(firms)) * staff ** 0.6
    per_day = CYCLES_PER_PERSON_YEAR * len(people) / 365.25 * weight / weight.sum()
    rate = pd.Series(per_day, index=companies["company_key"])
    role = np.exp(1.5 * (people["seniority"].map(vocab.SENIORITY_FIT)
                         + people["department"].map(vocab.DEPARTMENT_FIT)))
    lead_share = role / role.groupby(people["company_key"]).transform("sum")
    days = max(horizon_days - sum(OPPORTUNITY_LAG_DAYS) / 2, 0.0)
    expected = (people["company_key"].map(rate).fillna(0.0) * lead_share
                * expected_chance(people["fit"], cycles) * days)
    return pd.Series(expected.to_numpy(), index=people["person_key"])


def truth_propensity(rows: pd.DataFrame, truth_dir: Path, horizon_days: int,
                     probability: str = "p_opportunity") -> np.ndarray:
    """The truth's propensity of each row (person_key, t); 0 for a row with no true person.
    `probability`: the cycles' column, `p_without_drift` for the rules before a drift."""
    cycles = pd.read_parquet(truth_dir / "cycles.parquet")
    people = pd.read_parquet(truth_dir / "people.parquet",
                             columns=["person_key", "company_key", "seniority", "department", "fit"])
    companies = pd.read_parquet(truth_dir / "companies.parquet")
    from_cycles = cycle_propensity(rows, carriers(cycles, probability))
    fit = rows["person_key"].map(people.set_index("person_key")["fit"]).fillna(0.0).to_numpy()
    inbound = inbound_rate(cycles, people) * (0.3 + fit) * horizon_days
    to_come = rows["person_key"].map(cycles_to_come(people, companies, cycles, horizon_days)).fillna(0.0)
    later = np.exp(-(inbound + to_come.to_numpy()))
    return np.where(rows["person_key"].isna(), 0.0, 1 - (1 - from_cycles) * later)


def _truth_rows(pids: pd.Series, times: pd.Series, middle_db: Path, truth_dir: Path) -> pd.DataFrame:
    """(person_key, t) of rows given by PID and time: the truth's person of each PID."""
    person = pids.map(true_people_of_pids(middle_db, truth_dir))
    return pd.DataFrame({"person_key": person.to_numpy(),
                         "t": pd.to_datetime(times, utc=True).reset_index(drop=True)})


def _ranking(y: np.ndarray, p: np.ndarray) -> dict:
    return {"roc_auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p))}


def ceiling(test: pd.DataFrame, middle_db: Path, truth_dir: Path, horizon_days: int) -> dict:
    """ROC-AUC and PR-AUC of the truth's propensity on a test window (pid, event_timestamp,
    label), and how many rows had a true person; skipped for a world without its truth."""
    if not (truth_dir / "cycles.parquet").is_file():
        return {"skipped": f"no hidden truth in {truth_dir} (a synthetic world writes it)"}
    rows = _truth_rows(test["pid"], test["event_timestamp"], middle_db, truth_dir)
    y = test["label"].to_numpy()
    return {**_ranking(y, truth_propensity(rows, truth_dir, horizon_days)), "rows": len(test),
            "positives": int(y.sum()), "rows_with_a_true_person": int(rows["person_key"].notna().sum())}


def rules_ceiling(scored: pd.DataFrame, middle_db: Path, truth_dir: Path, horizon_days: int) -> dict:
    """What a drift's new rules alone change in the ranking of served person-days (pid, at,
    converted): the truth's propensity under the rules after the drift (`p_opportunity`)
    against the same under the rules before it (`p_without_drift`), each knowing every cycle
    begun by then. `ratio` (after / before, PR-AUC) is what a model that learnt the new rules
    perfectly gains over one that knew the old ones perfectly: a drift that keeps the order of
    the buyers (a base rate that doubles for everyone) leaves retraining nothing to gain in
    ranking. (The models know no cycle: a train-once model that leans on a signal the drift
    broke can lose more than this.) Skipped without the truth or with one class."""
    cycles = truth_dir / "cycles.parquet"
    if not cycles.is_file() or "p_without_drift" not in pq.read_schema(cycles).names:
        return {"skipped": f"no hidden truth with p_without_drift in {truth_dir}"}
    y = scored["converted"].to_numpy().astype(int)
    if len(np.unique(y)) < 2:
        return {"skipped": "served person-days of one class only"}
    rows = _truth_rows(scored["pid"], scored["at"], middle_db, truth_dir)
    after = _ranking(y, truth_propensity(rows, truth_dir, horizon_days))
    before = _ranking(y, truth_propensity(rows, truth_dir, horizon_days, "p_without_drift"))
    return {"rules_after": after, "rules_before": before, "ratio": after["pr_auc"] / before["pr_auc"],
            "rows": len(rows), "rows_with_a_true_person": int(rows["person_key"].notna().sum())}


def soft_ranking(propensity: np.ndarray, p: np.ndarray) -> dict:
    """ROC-AUC and PR-AUC of `p` with the truth's `propensity` as soft labels: each row a
    positive weighing its propensity and a negative weighing the rest, so that the counts the
    figures are made of (pairs put in order, hits above each score) are those expected over
    every way the world's draws could have gone (each row also meets itself as a tie, which
    pulls ROC-AUC towards 0.5 by a share that shrinks with the rows). Free of which few
    person-days happened to convert, they tell two models apart where realised outcomes leave
    it to chance."""
    labels = np.r_[np.ones(len(p)), np.zeros(len(p))]
    weights, scores = np.r_[propensity, 1 - propensity], np.r_[p, p]
    return {"roc_auc": float(roc_auc_score(labels, scores, sample_weight=weights)),
            "pr_auc": float(average_precision_score(labels, scores, sample_weight=weights))}


def person_day_propensity(scored: pd.DataFrame, middle_db: Path, truth_dir: Path,
                          horizon_days: int) -> np.ndarray:
    """The truth's propensity of each row's person-day (pid, at), taken at the day's first row:
    the arms that scored a person-day are judged against one label."""
    keys = pd.MultiIndex.from_arrays([scored["pid"], pd.to_datetime(scored["at"], utc=True).dt.floor("D")])
    first = ~keys.duplicated()
    rows = _truth_rows(scored["pid"][first], scored["at"][first], middle_db, truth_dir)
    by_day = pd.Series(truth_propensity(rows, truth_dir, horizon_days), index=keys[first])
    return by_day.reindex(keys).to_numpy(float)


def against_truth(scored: pd.DataFrame, arms: Sequence[str], middle_db: Path, truth_dir: Path,
                  horizon_days: int) -> dict:
    """Each arm's probabilities on its rows (pid, at, probability; `model_version` the arm)
    ranked against the truth's propensity of those rows (`soft_ranking`); `ratio` = the last
    arm's PR-AUC / the first's. Skipped without the truth or without rows of an arm."""
    if not (truth_dir / "cycles.parquet").is_file():
        return {"skipped": f"no hidden truth in {truth_dir} (a synthetic world writes it)"}
    arm = scored["model_version"].astype(str).to_numpy()
    if any(not (arm == name).any() for name in arms):
        return {"skipped": "an arm scored none of the rows"}
    propensity = person_day_propensity(scored, middle_db, truth_dir, horizon_days)
    p = scored["probability"].to_numpy(float)
    out: dict = {name: soft_ranking(propensity[arm == name], p[arm == name]) for name in arms}
    out["ratio"] = out[arms[-1]]["pr_auc"] / out[arms[0]]["pr_auc"]
    return out
