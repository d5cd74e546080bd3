"""Account scores: a company's (CID) and a group's (EID) chance of an opportunity, with reasons.

The account model (`training.account.registered_model`, training/accounts.py) is watched like
the lead model (serving/champion.py: loaded at start, swapped when its `champion` alias moves)
and scored by the same `Scorer`, so an account's reasons are grouped by family exactly as a
lead's are (serving/reasons.py). Its features are the company's online rows of the views of
`account_scoring_v1` (company profile, buying committee), as the batch last materialised
them: the live path updates people, not the committee counts.

A stacked account model (spec `offset`, training/account_people.py) also adds its people's
scores to its trees', read live: the company's identified people (the middle layer's), their online
rows (which the live path keeps up to date), scored by the service's lead champion's scorer
without reasons (`path.predict`: LightGBM's fast path, or the pipeline), and "any of them",
1 - prod(1 - p), told as one reason ("its people's scores: ..."). A person who engages more
raises their company's score at once. The spec names the lead version the model was trained
with; after a lead promotion the account model reads the new champion's scores (calibrated
probabilities alike) until `leadscore train` trains both again, and the service logs that they
differ.

A group (EID) is scored from its companies: the chance that at least one of them opens an
opportunity, 1 - prod(1 - p_company) (treating the companies as independent, which a group's
shared buying centre makes optimistic), its tier from the account tiers on that score, and the
reasons of its strongest company. A group of one company scores as that company.

A company already in an open opportunity (serving/opportunities.py: the account model learns
from companies without one) says so in its record, `in_opportunity`, and is routed
`in_opportunity`; a group only when all of its companies are (its chance, tier and reasons come
from those with none open). Its score stays the model's reading.

Without an account champion (a project trained before the account model), account scores are
a 503 that says to run `leadscore train`; the lead scores are unaffected.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from leadscore.config import Settings
from leadscore.features.catalog import (
    COMMITTEE_FEATURES,
    COMPANY_PROFILE_FEATURES,
    PEOPLE_SCORES,
    account_scoring_specs,
)
from leadscore.features.store import OnlineFeatures, read_view
from leadscore.scoring.estimators import chance_of_any
from leadscore.scoring.registry import CHAMPION
from leadscore.scoring.tiers import probability_to_score, tier_array
from leadscore.serving.champion import ChampionWatcher
from leadscore.serving.opportunities import first_opened, marked
from leadscore.serving.scorer import Scorer

log = logging.getLogger(__name__)

# The views of account_scoring_v1 and their features (features/definitions.py).
ACCOUNT_VIEWS = {"company_profile": [f.name for f in COMPANY_PROFILE_FEATURES],
                 "company_committee": [f.name for f in COMMITTEE_FEATURES]}


class NoAccountModel(LookupError):
    """No account champion is loaded (none registered yet, or it failed to load)."""


@dataclass(frozen=True)
class AccountRows:
    """Online features of some companies: the ids found, and their columns in the same order."""

    cids: list[str]
    columns: dict[str, list]


def read_accounts(store, cids: list[str]) -> AccountRows:
    """The companies' online rows of every account view; a company without a profile row is
    not known online and is left out."""
    columns: dict[str, list] = {}
    rows = {view: read_view(store, view, "cid", cids, names) for view, names in ACCOUNT_VIEWS.items()}
    known = [i for i, row in enumerate(rows["company_profile"]) if row is not None]
    for view, names in ACCOUNT_VIEWS.items():
        for name in names:
            columns[name] = [None if (row := rows[view][i]) is None else row[name] for i in known]
    return AccountRows([cids[i] for i in known], columns)


class AccountScorer:
    """Scores companies and groups with the account champion, read from the online store; a
    stacked champion also from the company's people (`people_of`: a cid's identified PIDs),
    scored by the lead champion (`lead`: the service's) from their online rows (`people`).
    `in_opportunity(cid)`: the company's open opportunity (serving/opportunities.py), told in
    its record (None: none open)."""

    def __init__(self, settings: Settings, people: OnlineFeatures, lead: Callable[[], Scorer],
                 people_of: Callable[[str], list[str]],
                 in_opportunity: Callable[[str], dict | None] = lambda cid: None):
        self.store, self.people, self.lead, self.people_of = people.store, people, lead, people_of
        self.in_opportunity = in_opportunity
        self.watcher = ChampionWatcher(settings, CHAMPION, settings.training.account.registered_model,
                                       lambda _: [*account_scoring_specs(), PEOPLE_SCORES],
                                       required=False).start()
        self._told_versions: tuple[str, str] | None = None  # (account, lead) versions logged as differing

    @property
    def scorer(self) -> Scorer:
        scorer = self.watcher.scorer
        if scorer is None:
            error = self.watcher.last_error
            why = f"; last error: {error}" if error else ""
            raise NoAccountModel("no account model is being served: run `leadscore train` (it trains the "
                                 f"account model after the lead model){why}")
        return scorer

    def stop(self) -> None:
        self.watcher.stop()

    def score_companies(self, cids: list[str], detail: str = "behaviour") -> dict[str, dict]:
        """cid -> its explained score record, for the companies known online."""
        scorer = self.scorer
        rows = read_accounts(self.store, cids)
        if not rows.cids:
            return {}
        if scorer.spec.offset is not None:
            rows.columns[scorer.spec.offset.column] = self.people_chances(scorer, rows.cids)
        records = scorer.score_records(rows.cids, rows.columns, None, detail)
        colours = scorer.spec.tiers.colours
        return {cid: marked(_account_record(record, cid, colours), self.in_opportunity(cid))
                for cid, record in zip(rows.cids, records, strict=True)}

    def people_chances(self, scorer: Scorer, cids: list[str]) -> list[float]:
        """Each company's chance that any of its people converts, by the lead champion's scores of
        their online rows now: 0 for a company with no people, as training has it (no leads at a
        snapshot: none of them converts, training/account_people.py); unknown (NaN) for one whose
        people are not online, which the model starts at the average account's (`offset_start`):
        its people are not known to be cold."""
        lead = self.lead()
        self._tell_versions(scorer, lead)
        chances = []
        for cid in cids:
            people = self.people_of(cid)
            if not people:
                chances.append(0.0)
                continue
            online = self.people.read_rows(people)
            known = [i for i, found in enumerate(online.known) if found]
            columns = {name: [online.columns[name][i] for i in known] for name in lead.feature_names}
            chances.append(chance_of_any(lead.path.predict(columns, len(known))[0]) if known else math.nan)
        return chances

    def _tell_versions(self, scorer: Scorer, lead: Scorer) -> None:
        """Log once per pair when the account model reads another lead version than it was
        trained with (after a lead promotion; `leadscore train` trains both again)."""
        versions, offset = (scorer.version, lead.version), scorer.spec.offset
        if offset is None:  # only a stacked model reads the lead champion's scores
            return
        if offset.lead_version != lead.version and versions != self._told_versions:
            log.warning("account model v%s was trained on lead model v%s's scores and reads lead "
                        "champion v%s's now; `leadscore train` trains both again", scorer.version,
                        offset.lead_version, lead.version)
            self._told_versions = versions

    def score_group(self, eid: str, cids: list[str], detail: str = "behaviour") -> dict | None:
        """The group's record from its companies' (None if none of them is known online): its
        chance, tier and reasons from those with no open opportunity (a company in one is
        outside the model's population and would read near 100), the group in an opportunity
        only when all of them are; each company's own flag is in `companies`."""
        companies = self.score_companies(cids, detail)
        if not companies:
            return None
        free = [record for record in companies.values() if record["in_opportunity"] is None]
        basis = free or list(companies.values())
        strongest = max(basis, key=lambda record: record["probability"])
        # the chance that at least one of the companies opens an opportunity (independence)
        probability = chance_of_any(np.array([record["probability"] for record in basis]))
        spec = self.scorer.spec
        score = float(probability_to_score(np.array([probability]), spec.score)[0])
        tier = str(tier_array({"score": [score], "fit_score": [0.0], "interest_score": [0.0],
                               "completeness": [1.0]}, spec.tiers)[0])
        group = {**strongest, "cid": None, "eid": eid, "probability": round(probability, 6),
                 "score": round(score, 1), "tier": tier, "tier_colour": spec.tiers.colours[tier],
                 "routing": self.scorer.routing[tier],
                 "average_score": None, "reasons_of": strongest["cid"],
                 "companies": sorted(({"cid": r["cid"], "probability": r["probability"], "score": r["score"],
                                       "tier": r["tier"], "in_opportunity": r["in_opportunity"]}
                                      for r in companies.values()),
                                     key=lambda c: -c["probability"])}
        return marked(group, None if free else first_opened(r["in_opportunity"] for r in companies.values()))


def _account_record(record: dict, cid: str, colours: dict[str, str]) -> dict:
    """A Scorer record (shaped for a person) as an account's: keyed by cid, without the person's
    fit and interest points (the account model has none), with its tier's colour."""
    dropped = {"pid", "fit_score", "interest_score", "feature_timestamp"}
    return {"cid": cid, "eid": None, **{k: v for k, v in record.items() if k not in dropped},
            "tier_colour": colours[record["tier"]], "reasons_of": cid, "companies": None}
