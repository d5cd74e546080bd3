"""Feast definitions: the person entity, the fit and interest views, lead_scoring_v1.

Read by `feast apply`. The Parquet sources live under $LEADSCORE_DATA_DIR/features
(written by `leadscore features build`); field lists and descriptions come from
the feature catalog, so they match what the builder writes. Unlike the rest of
leadscore, this module reads settings at import: Feast imports it to find the
definitions, and the environment is the only way to pass it anything.
"""

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from leadscore.config import load_settings
from leadscore.features.catalog import FIT_FEATURES, FeatureSpec, settings_catalog

_settings = load_settings()
_data_dir = Path(os.environ.get("LEADSCORE_DATA_DIR", _settings.data_dir)) / "features"
_catalog = settings_catalog(_settings)
_TYPES = {"int": Int64, "float": Float64, "string": String}


def _fields(specs: list[FeatureSpec]) -> list[Field]:
    return [Field(name=spec.name, dtype=_TYPES[spec.dtype], description=spec.description)
            for spec in specs]


# A person as marketing scores them: one per real human (One ID's PID).
person = Entity(name="person", join_keys=["pid"], value_type=ValueType.STRING,
                description="A person resolved by One ID (PID).")

person_fit_source = FileSource(
    name="person_fit_source", path=str(_data_dir / "person_fit.parquet"),
    timestamp_field="event_timestamp",
    description="Fit rows on a weekly grid, each showing only attributes known by then.")

person_interest_source = FileSource(
    name="person_interest_source", path=str(_data_dir / "person_interest.parquet"),
    timestamp_field="event_timestamp",
    description="Interest rows on a weekly grid, each from events strictly before its timestamp.")

# Who the person is: company size, industry, funding; seniority and department.
person_fit_fv = FeatureView(
    name="person_fit", entities=[person], ttl=timedelta(days=_settings.features.ttl_days),
    schema=_fields(FIT_FEATURES), source=person_fit_source, online=True,
    description="Firmographic and demographic fit of a person.")

# What the person did lately: counts per event type and window, recency, breadth.
person_interest_fv = FeatureView(
    name="person_interest", entities=[person],
    ttl=timedelta(days=_settings.features.ttl_days),
    schema=_fields(_catalog.specs()), source=person_interest_source, online=True,
    description="Behavioural interest of a person in recency windows.")

# The versioned set of features the propensity models read.
lead_scoring_v1 = FeatureService(
    name="lead_scoring_v1", features=[person_fit_fv, person_interest_fv],
    description="Fit and interest features for lead propensity, version 1.")
