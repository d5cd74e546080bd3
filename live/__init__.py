"""The live path: records sent one by one between batch runs, kept in an event log beside the
middle layer (log.py), resolved by incremental identity (identity.py), ingested with the
batch's own rules (ingest.py)."""
