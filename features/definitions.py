"""Feast definitions: the person and company entities, their views, lead_scoring_v1.

Read by `feast apply`. The Parquet sources live under $LEADSCORE_DATA_DIR/features
(written by `leadscore features build`); field lists and descriptions come from
the feature catalog, so they match what the builder writes. Unlike the rest of
leadscore, this module reads settings at import: Feast imports it to find the
definitions, and the environment is the only way to pass it anything.

Views are split by domain. The scoring service reads only person-keyed views, so
one online lookup by PID returns all of it; company-keyed views serve portraits
and segments.
"""

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_source import DataSource
from feast.types import Float64, Int64, String

from leadscore.config import load_settings
from leadscore.features.catalog import (
    ACCOUNT_FEATURES,
    COMMITTEE_FEATURES,
    COMPANY_ENGAGEMENT_FEATURES,
    COMPANY_PROFILE_FEATURES,
    FIT_FEATURES,
    FeatureSpec,
    settings_catalog,
)

_settings = load_settings()
_data_dir = Path(os.environ.get("LEADSCORE_DATA_DIR", _settings.data_dir)) / "features"
_catalog = settings_catalog(_settings)
_TYPES = {"int": Int64, "float": Float64, "string": String}
# Grid rows are rewritten every step; a row older than this is stale (Feast returns nothing).
_GRID_TTL = timedelta(days=_settings.features.ttl_days)
# Change rows stay valid until the next change: no expiry (Feast: a ttl of 0).
_NO_TTL = timedelta(0)


def _fields(specs: list[FeatureSpec]) -> list[Field]:
    return [Field(name=spec.name, dtype=_TYPES[spec.dtype], description=spec.description)
            for spec in specs]


def _source(name: str, description: str) -> DataSource:
    """The view's Parquet parts: a FileSource for DuckDB, a SparkSource with `engine: spark`
    (Feast's Spark offline store reads only those; pyspark is imported only then)."""
    path = str(_data_dir / f"{name}.parquet" / "*.parquet")
    if _settings.engine == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

        return SparkSource(name=f"{name}_source", path=path, file_format="parquet",
                           timestamp_field="event_timestamp", description=description)
    return FileSource(name=f"{name}_source", path=path, timestamp_field="event_timestamp",
                      description=description)


# A person as marketing scores them: one per real human (One ID's PID).
person = Entity(name="person", join_keys=["pid"], value_type=ValueType.STRING,
                description="A person resolved by One ID (PID).")

# A company (CRM account) resolved by One ID (CID).
company = Entity(name="company", join_keys=["cid"], value_type=ValueType.STRING,
                 description="A company resolved by One ID (CID).")

# Who the person is: company size, industry, funding as known through the person; seniority.
person_fit_fv = FeatureView(
    name="person_fit", entities=[person], ttl=_NO_TTL, schema=_fields(FIT_FEATURES), online=True,
    source=_source("person_fit", "A row whenever a person's known attributes change."),
    description="Firmographic and demographic fit of a person, as known at each time.",
    tags={"domain": "fit"})

# What the person did lately: counts per event type and window, recency, rates, trend.
person_interest_fv = FeatureView(
    name="person_interest", entities=[person], ttl=_GRID_TTL, schema=_fields(_catalog.specs()),
    source=_source("person_interest", "Grid rows, each from events strictly before its timestamp."),
    online=True, description="Behavioural interest of a person in recency windows.",
    tags={"domain": "interest"})

# The buying committee around the person: engaged people at the company and the group.
person_account_fv = FeatureView(
    name="person_account", entities=[person], ttl=_GRID_TTL, schema=_fields(ACCOUNT_FEATURES),
    source=_source("person_account", "Grid rows for people whose company is known."),
    online=True, description="Account-level engagement seen from a person.",
    tags={"domain": "interest"})

company_profile_fv = FeatureView(
    name="company_profile", entities=[company], ttl=_NO_TTL, schema=_fields(COMPANY_PROFILE_FEATURES),
    source=_source("company_profile", "One row per company."), online=True,
    description="Firmographics of a company (CRM account).", tags={"domain": "fit"})

company_engagement_fv = FeatureView(
    name="company_engagement", entities=[company], ttl=_GRID_TTL,
    schema=_fields(COMPANY_ENGAGEMENT_FEATURES),
    source=_source("company_engagement", "Grid rows per company with engaged people."), online=True,
    description="How many of a company's people engaged lately.", tags={"domain": "interest"})

# The versioned set of features the propensity models read.
lead_scoring_v1 = FeatureService(
    name="lead_scoring_v1", features=[person_fit_fv, person_interest_fv, person_account_fv],
    description="Fit, interest and buying-committee features for lead propensity, version 1.")

# The buying committee of each company: engaged people, their seniority and departments.
company_committee_fv = FeatureView(
    name="company_committee", entities=[company], ttl=_GRID_TTL, schema=_fields(COMMITTEE_FEATURES),
    source=_source("company_committee", "Grid rows per company with people seen."), online=True,
    description="The buying committee of a company: who engaged, how senior, how broad.",
    tags={"domain": "interest"})

# The versioned set of features the account model reads (one online lookup by CID).
account_scoring_v1 = FeatureService(
    name="account_scoring_v1", features=[company_profile_fv, company_committee_fv],
    description="Firmographics and buying-committee features for account propensity, version 1.")
