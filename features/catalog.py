"""The feature catalog: names, types, descriptions, salesperson phrasing and reason families.

One place that the SQL builder, the Feast definitions, training and the
explanations all read, so a feature is named and described once.

A reason family is one behaviour or one trait (website visits over every window, the
buying committee, the company): a score's reasons are told per family, with the family's
contributions summed, so that the overlapping windows of one behaviour never read as two
reasons pulling apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from leadscore.clock import ago
from leadscore.config import Settings, load_yaml


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dtype: str  # "int", "float" or "string"
    description: str
    phrase: str = ""  # how a reason reads; {value} is the feature value
    labels: tuple[str, str] | None = None  # for 0/1 flags: how 0 and 1 read
    zero_when_missing: bool = False  # a count: no row means nothing happened
    family: str = ""  # the reason family (behaviour or trait) it belongs to; "" for its own
    absent: str = ""  # how a count of zero reads ("no website visits in the last 7 days")
    missing: str = ""  # how an unknown value reads ("never visited the website"); a count reads as none


FIT_FEATURES = [
    FeatureSpec("company_employees", "int", "Employees of the person's company (CRM account).",
                "works at a company with {value} employees", family="firmographics",
                missing="company size not known"),
    FeatureSpec("company_employees_band", "string", "Employee band of the company.",
                "company of {value} employees", family="firmographics", missing="company size not known"),
    FeatureSpec("company_industry", "string", "Industry of the company.", "company industry: {value}",
                family="firmographics", missing="company industry not known"),
    FeatureSpec("company_funding_stage", "string", "Funding stage of the company (seed .. public).",
                "company funding stage: {value}", family="firmographics",
                missing="company funding stage not known"),
    FeatureSpec("company_revenue_usd", "float", "Annual revenue of the company in USD.",
                "company revenue ${value:,.0f}", family="firmographics", missing="company revenue not known"),
    FeatureSpec("group_companies", "int", "Companies in the person's group (EID).",
                "part of a group of {value} companies", family="firmographics", missing="no group known"),
    FeatureSpec("seniority", "string", "Seniority from the job title (c_level .. individual).",
                "seniority: {value}", family="role", missing="seniority not known"),
    FeatureSpec("department", "string", "Department from the job title.", "department: {value}",
                family="role", missing="department not known"),
    FeatureSpec("is_decision_maker", "int", "1 if seniority is director or above.",
                labels=("is not a decision maker", "is a decision maker (director or above)"), family="role",
                missing="seniority not known"),
    FeatureSpec("profile_completeness", "float",
                "Share of profile fields known (email, phone, title, company, industry, size, funding).",
                "profile {value:.0%} complete", family="profile", missing="profile completeness not known"),
]


# Account level: the buying committee around a person (rows keyed by the person, so one
# online read gives the whole scoring service).
ACCOUNT_FEATURES = [
    FeatureSpec("company_people_engaged_30d", "int",
                "People at the person's company (the person included) who engaged in the last 30 days.",
                "{value} people at their company engaged in the last 30 days", zero_when_missing=True,
                family="committee"),
    FeatureSpec("group_people_engaged_30d", "int",
                "People across the person's group (EID) who engaged in the last 30 days.",
                "{value} people across their group engaged in the last 30 days", zero_when_missing=True,
                family="committee"),
]

# The company entity's own views, for portraits and segments.
COMPANY_PROFILE_FEATURES = [
    FeatureSpec("industry", "string", "Industry of the company.", "industry: {value}",
                family="firmographics", missing="industry not known"),
    FeatureSpec("employees", "int", "Employees of the company.", "{value} employees",
                family="firmographics", missing="size not known"),
    FeatureSpec("employees_band", "string", "Employee band of the company.", "{value} employees",
                family="firmographics", missing="size not known"),
    FeatureSpec("funding_stage", "string", "Funding stage (seed .. public).", "funding stage: {value}",
                family="firmographics", missing="funding stage not known"),
    FeatureSpec("revenue_usd", "float", "Annual revenue in USD.", "revenue ${value:,.0f}",
                family="firmographics", missing="revenue not known"),
    FeatureSpec("group_companies", "int", "Companies in the company's group (EID).",
                "part of a group of {value} companies", family="firmographics", missing="no group known"),
]
COMPANY_ENGAGEMENT_FEATURES = [
    FeatureSpec("people_engaged_30d", "int", "People at the company who engaged in the last 30 days."),
    FeatureSpec("people_engaged_90d", "int", "People at the company who engaged in the last 90 days."),
    FeatureSpec("events_30d", "int", "Engagement events of the company's people in the last 30 days."),
]


# The buying committee of a company (features/committee.py), for the account model: what its
# people did in the last COMMITTEE_WINDOW days and who they are.
COMMITTEE_WINDOW = 90
# The committee's events summed per kind: column committee_<kind>_90d -> the event types summed.
COMMITTEE_KINDS = {
    "web_visit": ["web_visit"], "email_click": ["email_click"],
    "content": ["whitepaper_download", "form_submit"], "contact_sales": ["contact_sales"],
    "webinar_or_event": ["webinar_attend", "event_attend"],
}
_KIND_FAMILIES = {"web_visit": "website", "email_click": "email", "content": "content",
                  "contact_sales": "sales_request", "webinar_or_event": "events_and_webinars"}
_KIND_PHRASES = {"web_visit": "{value} website visits by its people",
                 "email_click": "{value} email clicks by its people",
                 "content": "its people downloaded or filled a form {value} times",
                 "contact_sales": "{value} requests to talk to sales",
                 "webinar_or_event": "its people attended webinars or events {value} times"}
_KIND_ABSENCES = {"content": "no downloads or forms filled by its people",
                  "webinar_or_event": "its people attended no webinars or events"}


def _committee(name: str, dtype: str, description: str, phrase: str, family: str = "committee",
               absent: str = "", missing: str = "") -> FeatureSpec:
    return FeatureSpec(name, dtype, description, phrase, zero_when_missing=dtype == "int", family=family,
                       absent=absent, missing=missing)


_W = COMMITTEE_WINDOW
COMMITTEE_FEATURES = [
    _committee("committee_people_seen", "int",
               "People of the company with any interaction before the time.",
               "{value} people known at the account"),
    _committee("committee_engaged_30d", "int", "People of the company who engaged in the last 30 days.",
               "{value} people engaged in the last 30 days"),
    _committee(f"committee_engaged_{_W}d", "int", f"People of the company who engaged in the last {_W} days.",
               f"{{value}} people engaged in the last {_W} days"),
    _committee(f"committee_decision_makers_engaged_{_W}d", "int",
               f"Decision makers (director and above) of the company who engaged in the last {_W} days.",
               f"{{value}} decision makers engaged in the last {_W} days"),
    _committee(f"committee_departments_engaged_{_W}d", "int",
               f"Distinct departments of the people who engaged in the last {_W} days.",
               f"engaged people from {{value}} departments (last {_W} days)",
               absent=f"no department engaged in the last {_W} days"),
    _committee(f"committee_seniority_levels_engaged_{_W}d", "int",
               f"Distinct seniority levels of the people who engaged in the last {_W} days.",
               f"engaged people at {{value}} seniority levels (last {_W} days)",
               absent=f"no seniority level engaged in the last {_W} days"),
    _committee("committee_top_person_events_30d", "int",
               "Engagement events of the company's most engaged person in the last 30 days.",
               "its most engaged person had {value} touches in the last 30 days", family="activity"),
    _committee("committee_events_30d", "int",
               "Engagement events of the company's people in the last 30 days.",
               "{value} touches by its people in the last 30 days", family="activity"),
    _committee(f"committee_events_{_W}d", "int",
               f"Engagement events of the company's people in the last {_W} days.",
               f"{{value}} touches by its people in the last {_W} days", family="activity"),
    *[_committee(f"committee_{kind}_{_W}d", "int",
                 f"Events of the company's people in the last {_W} days: {', '.join(types)}.",
                 f"{_KIND_PHRASES[kind]} in the last {_W} days", family=_KIND_FAMILIES[kind],
                 absent=f"{_KIND_ABSENCES[kind]} in the last {_W} days" if kind in _KIND_ABSENCES else "")
      for kind, types in COMMITTEE_KINDS.items()],
    _committee("committee_days_since_last_event", "float",
               "Days since the last engagement of any of the company's people (missing if never).",
               "last touch by anyone at the account {ago}", family="recency",
               missing="no touch by anyone at the account on record"),
    _committee("committee_events_7d", "int", "Engagement events of the company's people in the last 7 days.",
               "{value} touches by its people in the last 7 days", family="activity"),
    _committee("committee_top_person_events_7d", "int",
               "Engagement events of the company's most engaged person in the last 7 days.",
               "its most engaged person had {value} touches in the last 7 days", family="activity"),
    _committee("committee_contact_sales_30d", "int", "Requests to talk to sales by its people in 30 days.",
               "{value} requests to talk to sales in the last 30 days", family="sales_request"),
    _committee("committee_days_since_last_contact_sales", "float",
               "Days since anyone at the company last asked sales to get in touch (missing if never).",
               "someone at the account last asked sales to get in touch {ago}", family="sales_request",
               missing="nobody at the account has asked sales to get in touch"),
    _committee("committee_days_since_last_form_submit", "float",
               "Days since anyone at the company last filled a web form (missing if never).",
               "someone at the account last filled a web form {ago}", family="content",
               missing="nobody at the account has filled a web form"),
    _committee("committee_top_engagement_trend", "float",
               "The highest engagement trend among the company's people (30 days against the 90 before).",
               "engagement of its most rising person x{value:.1f} (last month against the quarter before)",
               family="activity", missing="no engagement trend at the account"),
    _committee("committee_decision_makers_engaged_30d", "int",
               "Decision makers (director and above) of the company who engaged in the last 30 days.",
               "{value} decision makers engaged in the last 30 days"),
    _committee(f"group_people_engaged_{_W}d", "int",
               f"People across the company's group (EID) who engaged in the last {_W} days.",
               f"{{value}} people across its group engaged in the last {_W} days"),
]


def account_scoring_specs() -> list[FeatureSpec]:
    """Every feature of the `account_scoring_v1` service (company profile, buying committee)."""
    return [*COMPANY_PROFILE_FEATURES, *COMMITTEE_FEATURES]


# Not a Feast feature: where a stacked account model starts (training/account_people.py), worked
# out from the lead scores of the company's people when it is trained and when it scores, and
# told as one reason.
PEOPLE_SCORES = FeatureSpec(
    "people_any", "float", "The chance that at least one of the company's people converts within the "
    "horizon, 1 - prod(1 - p) over their lead scores (as if they were independent).",
    "its people's scores: {value:.0%} chance that one of them converts", family="people_scores",
    missing="no scored people at the account")


@dataclass(frozen=True)
class InterestCatalog:
    """Interest features: per event type and window counts, recency per kind, rates, trend."""

    event_types: list[str]
    windows: list[int]
    phrases: dict[str, str] = field(default_factory=dict)
    passive_event_types: list[str] = field(default_factory=list)  # not engagement
    absences: dict[str, str] = field(default_factory=dict)  # kind -> how none in {w} days reads
    recencies: dict[str, dict] = field(default_factory=dict)  # kind -> {last: "... {ago}", never: ...}
    # Event kind ("web_visit"; "events" = any touch, "event" = any engagement's recency)
    # -> reason family; a kind not listed is a family of its own.
    families: dict[str, str] = field(default_factory=dict)
    trend_recent_days: int = 30
    trend_before_days: int = 90

    def family(self, kind: str) -> str:
        return self.families.get(kind, kind)

    def count_name(self, event_type: str, window: int) -> str:
        return f"{event_type}_{window}d"

    def _count_description(self, kind: str, window: int) -> str:
        if kind == "events":
            return f"Engagement events of any type (passive ones excluded) in the {window} days before."
        return f"Number of {kind} events in the {window} days before the feature time."

    def _recency(self, kind: str) -> FeatureSpec:
        what = "any engagement" if kind == "event" else kind.replace("_", " ")
        told = "touch" if kind == "event" else what  # how a reason names it, when config does not
        words = self.recencies.get(kind, {})
        return FeatureSpec(f"days_since_last_{kind}", "float",
                           f"Days since the last {what} before the feature time (missing if never).",
                           words.get("last", f"last {told} {{ago}}"), family=self.family(kind),
                           missing=words.get("never", f"no {told} on record"))

    def recency_names(self) -> list[str]:
        """The days-since features: days from a person's last event (of a kind) to the row's time."""
        return [spec.name for spec in self._recencies()]

    def _recencies(self) -> list[FeatureSpec]:
        return [self._recency(kind) for kind in ["event", *self.event_types]]

    def specs(self) -> list[FeatureSpec]:
        specs = [
            FeatureSpec(self.count_name(kind, w), "int", self._count_description(kind, w),
                        self.phrases.get(kind, f"{kind} x{{n}} in {{w}} days").replace(
                            "{n}", "{value}").replace("{w}", str(w)), zero_when_missing=True,
                        family=self.family(kind), absent=self.absences.get(kind, "").replace("{w}", str(w)))
            for kind in [*self.event_types, "events"] for w in self.windows
        ]
        recent, before = self.trend_recent_days, self.trend_before_days
        return specs + self._recencies() + [
            FeatureSpec("distinct_channels_90d", "int", "Distinct channels used in the last 90 days.",
                        "engaged on {value} channels in the last 90 days", zero_when_missing=True,
                        family=self.family("events")),
            FeatureSpec("email_open_rate_90d", "float",
                        "Opens per email sent in the last 90 days (missing if none sent).",
                        "opens {value:.0%} of marketing emails", family=self.family("email_open"),
                        missing="no marketing emails sent in the last 90 days"),
            FeatureSpec("email_click_rate_90d", "float",
                        "Clicks per email sent in the last 90 days (missing if none sent).",
                        "clicks {value:.0%} of marketing emails", family=self.family("email_click"),
                        missing="no marketing emails sent in the last 90 days"),
            FeatureSpec("engagement_trend", "float",
                        f"Engagement in the last {recent} days against the {before} days before, per "
                        f"{recent} days: (recent + 1) / (before * {recent}/{before} + 1); above 1 rising.",
                        "engagement trend x{value:.1f} (last month against the quarter before)",
                        family=self.family("events"), missing="engagement trend not known"),
        ]


def interest_catalog(features_config: dict, windows: list[int]) -> InterestCatalog:
    return InterestCatalog(
        event_types=list(features_config["interest_event_types"]),
        windows=sorted(windows),
        phrases=dict(features_config.get("event_phrases", {})),
        passive_event_types=list(features_config.get("passive_event_types", [])),
        absences=dict(features_config.get("event_absences", {})),
        families=dict(features_config.get("event_families", {})),
        recencies=dict(features_config.get("event_recency", {})),
    )


def settings_catalog(settings: Settings) -> InterestCatalog:
    """The interest catalog of a project: config/features.yaml and the configured windows."""
    return interest_catalog(load_yaml(settings.config_file("features.yaml")),
                            settings.features.windows_days)


def family_labels(settings: Settings) -> dict[str, str]:
    """Reason family -> how a reason names it (config/features.yaml's `family_labels`)."""
    return dict(load_yaml(settings.config_file("features.yaml")).get("family_labels", {}))


def fit_families(settings: Settings) -> list[str]:
    """The reason families that tell who a lead is (the fit axis); every other family tells what
    they do (the interest axis). config/features.yaml's `fit_families`."""
    return list(load_yaml(settings.config_file("features.yaml")).get("fit_families", []))


def fit_feature_names(settings: Settings) -> frozenset[str]:
    """The `lead_scoring_v1` features of the fit families: their points make the fit axis."""
    return frozenset(spec.name for spec in scoring_specs(settings) if spec.family in fit_families(settings))


def scoring_specs(settings: Settings) -> list[FeatureSpec]:
    """Every feature of the `lead_scoring_v1` service, in the service's view order."""
    return [*FIT_FEATURES, *settings_catalog(settings).specs(), *ACCOUNT_FEATURES]


# Nouns that follow a count in the catalog's phrases, and how one of each reads.
SINGULARS = {"times": "time", "days": "day", "people": "person", "touches": "touch", "emails": "email",
             "links": "link", "whitepapers": "whitepaper", "forms": "form", "webinars": "webinar",
             "events": "event", "purchases": "purchase", "visits": "visit", "clicks": "click",
             "requests": "request", "departments": "department", "levels": "level", "makers": "maker",
             "companies": "company", "employees": "employee", "channels": "channel", "downloads": "download"}
# Category values as a salesperson writes them; any other reads with spaces for underscores.
CATEGORY_WORDS = {"c_level": "C-level", "vp": "VP", "it": "IT", "hr": "HR", "series_a": "series A",
                  "series_b": "series B", "series_c": "series C", "series_d": "series D",
                  "series_e_plus": "series E or later"}
_ONE = re.compile(r"(?<![\d.,])1 (\w+)(?: (\w+))?")


def category_words(value: str) -> str:
    """A category value as a salesperson writes it ('series E or later', 'IT', 'financial services')."""
    return CATEGORY_WORDS.get(value, value.replace("_", " "))


def _one(match: re.Match) -> str:
    """'1 times' -> 'once'; the plural noun right after the 1, or one word further, singular."""
    first, second = match[1], match[2]
    if first == "times":
        return "once" + (f" {second}" if second else "")
    if first in SINGULARS:
        return f"1 {SINGULARS[first]}" + (f" {second}" if second else "")
    return f"1 {first}" + (f" {SINGULARS.get(second, second)}" if second else "")


def in_good_english(text: str) -> str:
    """A phrased count made grammatical: '1 companies' -> '1 company', 'visited 1 times' ->
    'visited once'."""
    return _ONE.sub(_one, text)


def phrase(spec: FeatureSpec, value: object) -> str:
    """A feature value in a salesperson's words ('opened 3 marketing emails in the last 30 days');
    a count of none as an absence ('no website visits in the last 7 days', or the phrase with
    'no' for the count), one of a thing in the singular, a recency as the pages say how long
    ago ('last touch 3 days ago'), an unknown value as the spec's `missing` words ('never
    visited the website'; a count that is unknown is none)."""
    if value is None or value != value:  # missing or NaN
        if spec.missing or not spec.zero_when_missing:
            return spec.missing or f"{spec.name.replace('_', ' ')} not known"
        value = 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if spec.labels is not None:
        return spec.labels[1] if value else spec.labels[0]
    if isinstance(value, str):
        value = category_words(value)
    if "{ago}" in spec.phrase and isinstance(value, int | float):
        return spec.phrase.replace("{ago}", ago(value * 86_400))
    if isinstance(value, int) and value == 0 and spec.zero_when_missing:
        return spec.absent or in_good_english(spec.phrase.replace("{value}", "no"))
    if isinstance(value, int) and "{value}" in spec.phrase:
        return in_good_english(spec.phrase.replace("{value}", f"{value:,}"))
    if "{value:.0%}" in spec.phrase and isinstance(value, int | float) and not (value == 0 or
                                                                              0.005 <= value < 0.995):
        # a chance that rounds to 0% or 100% is not certain: "under 1%", "over 99%"
        return spec.phrase.replace("{value:.0%}", "under 1%" if value < 0.005 else "over 99%")
    try:
        return in_good_english(spec.phrase.format(value=value))
    except (ValueError, TypeError):
        return f"{spec.name.replace('_', ' ')}: {value}"
