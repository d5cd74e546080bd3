"""`leadscore bench identity`: resolution quality against the hidden truth, and speed.

Quality is pairwise: every pair of raw records that the resolver puts under one
PID is a predicted match, every pair with one true person a true match. Speed
runs the resolver in a child process per world size, so that each size's peak
memory is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.config import Settings


def _pairs(sizes: pd.Series) -> float:
    return float((sizes * (sizes - 1) / 2).sum())


def pairwise_scores(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering (item -> cluster) against the truth."""
    both = pd.DataFrame({"p": predicted, "t": truth}).dropna()
    true_positive = _pairs(both.groupby(["p", "t"]).size())
    predicted_pairs = _pairs(both.groupby("p").size())
    true_pairs = _pairs(both.groupby("t").size())
    precision = true_positive / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5)}


def synthetic_quality(middle_db: Path, truth_dir: Path) -> dict[str, float]:
    """Person figures over every raw record with a true person; company F1 over CRM accounts
    and people's current employers."""
    truth = pd.read_parquet(truth_dir / "records.parquet")
    truth.index = truth["source"] + ":" + truth["source_record_id"]
    with duckdb.connect(str(middle_db), read_only=True) as con:
        mapped = con.execute("SELECT source || ':' || source_record_id AS key, pid, cid FROM id_map").df()
        people = con.execute("SELECT pid, cid FROM person").df()
    mapped = mapped.set_index("key")
    persons = pairwise_scores(mapped["pid"], truth["person_key"].reindex(mapped.index))
    true_people = pd.read_parquet(truth_dir / "people.parquet").set_index("person_key")["company_key"]
    main_person = (truth.dropna(subset=["person_key"]).assign(pid=mapped["pid"])
                   .groupby("pid")["person_key"].agg(lambda keys: keys.mode().iloc[0]))
    employers = pd.DataFrame({"cid": people.set_index("pid")["cid"],
                              "company": main_person.map(true_people)}).dropna()
    accounts = mapped[mapped.index.str.startswith("crm_accounts:")]
    companies = pairwise_scores(
        pd.concat([accounts["cid"], employers["cid"]], ignore_index=True),
        pd.concat([truth["company_key"].reindex(accounts.index), employers["company"]],
                  ignore_index=True))
    return {**persons, "companies_f1": companies["f1"], "people": len(people)}


def _run_child(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


_SETUP = """
import json, resource, time
from pathlib import Path
from leadscore.config import load_settings
settings = load_settings(Path({settings_file!r})).with_data_dir(Path({data_dir!r}))
"""

_GENERATE = """
from leadscore.synth import generate_world, write_world
world = generate_world(settings.world.model_copy(update={{"scale": {scale}}}))
write_world(world, settings.raw_dir, settings.truth_dir)
print(json.dumps({{"records": sum(len(frame) for frame in world.sources.values())}}))
"""

_RESOLVE = """
from leadscore.identity.resolve import resolve, rules_from_settings
start = time.perf_counter()
resolve(settings.raw_dir, settings.middle_db, rules_from_settings(settings))
print(json.dumps({{"seconds": time.perf_counter() - start,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def resolve_world(settings_file: Path, data_dir: Path, scale: float) -> dict:
    """Generate a world of `scale` in one process, resolve it in another (its own peak RSS)."""
    setup = _SETUP.format(settings_file=str(settings_file), data_dir=str(data_dir))
    generated = _run_child(setup + _GENERATE.format(scale=scale))
    return {**generated, **_run_child(setup + _RESOLVE.format())}


def speed(settings: Settings, work_dir: Path, scales: dict[str, float]) -> dict[str, dict]:
    """Records, seconds, records/s and peak memory of resolving worlds of each size."""
    figures = {}
    for label, scale in scales.items():
        run = resolve_world(settings.source, work_dir / label, scale)
        figures[label] = {"records": run["records"], "seconds": round(run["seconds"], 2),
                          "records_per_s": round(run["records"] / run["seconds"]),
                          "peak_rss_gib": round(run["peak_rss_gib"], 2)}
    return figures
