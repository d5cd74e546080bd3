"""`leadscore bench identity`: resolution quality against the hidden truth, speed, FEBRL.

Quality is pairwise: every pair of raw records that the resolver puts under one
PID is a predicted match, every pair with one true person a true match. Speed
runs the resolver in a child process per world size (multiprocessing, spawned), so
that each size's peak memory is its own; the children's output goes to bench.log in
each world's folder.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from leadscore.config import Settings, load_settings
from leadscore.identity import evaluate
from leadscore.identity import probabilistic as prob
from leadscore.identity.mapping import TableMapping, load_mapping, standardise_table
from leadscore.identity.resolve import resolve, rules_from_settings
from leadscore.identity.standardise import StandardiseRules
from leadscore.synth import generate_world, write_world

logger = logging.getLogger(__name__)


def true_person_of(pids: pd.Series, person_keys: pd.Series) -> pd.Series:
    """PID -> the true person most of its records belong to (both indexed by `source:record`;
    a tie goes to the first key in order, as `Series.mode` has it)."""
    counts = (person_keys.dropna().to_frame().assign(pid=pids).dropna()
              .groupby(["pid", "person_key"]).size().rename("n").reset_index())
    first = counts.sort_values(["pid", "n", "person_key"], ascending=[True, False, True])
    return first.drop_duplicates("pid").set_index("pid")["person_key"]


def true_people_of_pids(middle_db: Path, truth_dir: Path) -> pd.Series:
    """PID -> its true person, over the batch world's records (the future's are not resolved)."""
    truth = pd.read_parquet(truth_dir / "records.parquet", columns=["source", "source_record_id",
                                                                    "person_key", "future"])
    truth = truth[~truth["future"]]
    truth.index = truth["source"] + ":" + truth["source_record_id"]
    with duckdb.connect(str(middle_db), read_only=True) as con:
        mapped = con.execute("SELECT source || ':' || source_record_id AS key, pid FROM id_map").df()
    return true_person_of(mapped.set_index("key")["pid"], truth["person_key"])


def synthetic_quality(middle_db: Path, truth_dir: Path) -> dict[str, float]:
    """Person figures over every raw record with a true person; company F1 over CRM accounts
    and people's current employers. Records of the world's future (sent later, by a replay)
    are not judged: the figures are the batch world's."""
    truth = pd.read_parquet(truth_dir / "records.parquet")
    truth = truth[~truth["future"]]
    truth.index = truth["source"] + ":" + truth["source_record_id"]
    with duckdb.connect(str(middle_db), read_only=True) as con:
        mapped = con.execute("SELECT source || ':' || source_record_id AS key, pid, cid FROM id_map").df()
        people = con.execute("SELECT pid, cid FROM person").df()
    mapped = mapped.set_index("key")
    person_truth = truth["person_key"].reindex(mapped.index)
    persons = evaluate.clustering_scores(mapped["pid"], person_truth)
    labelled = pd.DataFrame({"id": mapped.index, "cluster_id": mapped["pid"].to_numpy(),
                             "entity": person_truth.to_numpy()}).dropna()
    persons["cluster_precision"] = evaluate.cluster_precision(
        labelled[["id", "cluster_id"]], labelled[["id", "entity"]])
    true_people = pd.read_parquet(truth_dir / "people.parquet").set_index("person_key")["company_key"]
    main_person = true_person_of(mapped["pid"], truth["person_key"])
    employers = pd.DataFrame({"cid": people.set_index("pid")["cid"],
                              "company": main_person.map(true_people)}).dropna()
    accounts = mapped[mapped.index.str.startswith("crm_accounts:")]
    companies = evaluate.clustering_scores(
        pd.concat([accounts["cid"], employers["cid"]], ignore_index=True),
        pd.concat([truth["company_key"].reindex(accounts.index), employers["company"]],
                  ignore_index=True))
    return {**persons, "companies_f1": companies["f1"], "people": len(people)}


def _load(settings_file: Path, data_dir: Path) -> Settings:
    return load_settings(settings_file).with_data_dir(data_dir)


def generate(settings_file: Path, data_dir: Path, scale: float) -> dict:
    """Write a world of `scale` to `data_dir`'s raw and truth folders; its number of raw records."""
    settings = _load(settings_file, data_dir)
    world = generate_world(settings.world.model_copy(update={"scale": scale}))
    write_world(world, settings.raw_dir, settings.truth_dir, settings.future_dir)
    return {"records": sum(len(frame) for frame in world.sources.values())}


def timed_resolve(settings_file: Path, data_dir: Path, fuzzy: bool, middle_name: str) -> dict:
    """Resolve `data_dir`'s raw records into `data_dir / middle_name`: seconds, and this
    process's peak memory (meant to run in a process of its own)."""
    settings = _load(settings_file, data_dir)
    identity = settings.identity.model_copy(update={"fuzzy_merge": fuzzy})
    settings = settings.model_copy(update={"identity": identity})
    start = time.perf_counter()
    resolve(settings.raw_dir, settings.data_dir / middle_name, rules_from_settings(settings))
    return {"seconds": time.perf_counter() - start,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _output_to(log: Path) -> None:
    """In the child: everything written to stdout or stderr goes to `log` (the CLI's stdout
    is the JSON)."""
    with open(log, "a") as file:
        os.dup2(file.fileno(), sys.stdout.fileno())
        os.dup2(file.fileno(), sys.stderr.fileno())


def in_child(function: Callable[..., dict], *args: Any, log: Path) -> dict:
    """`function(*args)` in a fresh process (spawned, so its peak memory is its own); its output
    goes to `log`, an exception in it is raised here."""
    log.parent.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_output_to, initargs=(log,)) as child:
        return child.submit(function, *args).result()


def resolve_world(settings_file: Path, data_dir: Path, scale: float) -> dict:
    """Generate a world of `scale` in one process, resolve it in another (its own peak RSS)."""
    log = data_dir / "bench.log"
    generated = in_child(generate, settings_file, data_dir, scale, log=log)
    return {**generated, **in_child(timed_resolve, settings_file, data_dir, True, "middle.duckdb", log=log)}


def resolve_exact_only(settings_file: Path, data_dir: Path) -> Path:
    """Resolve an already generated world with exact links only (the baseline); its middle layer."""
    in_child(timed_resolve, settings_file, data_dir, False, "middle_exact.duckdb", log=data_dir / "bench.log")
    return data_dir / "middle_exact.duckdb"


def speed(settings: Settings, work_dir: Path, scales: dict[str, float]) -> dict[str, dict]:
    """Records, seconds, records/s and peak memory of resolving worlds of each size."""
    figures = {}
    for label, scale in scales.items():
        run = resolve_world(settings.source_file, work_dir / label, scale)
        figures[label] = {"records": run["records"], "seconds": round(run["seconds"], 2),
                          "records_per_s": round(run["records"] / run["seconds"]),
                          "peak_rss_gib": round(run["peak_rss_gib"], 2)}
    return figures


# FEBRL: real third-party data with truth, matched by the probabilistic model of
# config/mappings/febrl.yaml. rec_id is dropped before matching and used only to score.
TRUTH_COLUMN = "rec_id"


def read_febrl(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """(the table without rec_id, the entity number of each row)."""
    frame = pd.read_csv(path, skipinitialspace=True, dtype=str)
    entity = frame[TRUTH_COLUMN].str.extract(r"rec-(\d+)-", expand=False).astype(int)
    return frame.drop(columns=TRUTH_COLUMN), entity


def _truth(entities: list[pd.Series], tables: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [pd.DataFrame({"id": table["record_id"].to_numpy(), "entity": entity.to_numpy()})
             for table, entity in zip(tables, entities, strict=True)]
    if len(parts) == 1:
        return parts[0]
    return pd.concat([part.assign(source=source) for part, source in zip(parts, prob.SOURCES, strict=True)],
                     ignore_index=True)[["source", "id", "entity"]]


def run_benchmark(paths: list[Path], mapping: TableMapping, config: prob.ModelConfig,
                  rules: StandardiseRules) -> dict[str, Any]:
    """Match the files (one: dedupe, two: link) and score the result against the truth."""
    started = time.perf_counter()
    read = [read_febrl(path) for path in paths]
    tables = [standardise_table(frame, mapping, rules, path.name)
              for (frame, _), path in zip(read, paths, strict=True)]
    linker = prob.fit(tables, config)
    candidates = prob.predict_pairs(linker)
    predicted = candidates[candidates["match_probability"] >= config.threshold]
    clusters = prob.cluster(predicted, config.clustering.threshold, prob.record_keys(tables),
                            config.clustering, link=len(tables) == 2)
    seconds = time.perf_counter() - started
    truth = _truth([entity for _, entity in read], tables)
    scores = evaluate.pairwise_scores(predicted, truth)
    cluster_scores = evaluate.pairwise_scores(evaluate.cluster_pairs(clusters), truth)
    return {**scores, "blocking_recall": evaluate.blocking_recall(candidates, truth),
            "cluster_precision": evaluate.cluster_precision(clusters, truth),
            "cluster_f1": cluster_scores["f1"], "candidate_pairs": len(candidates), "seconds": seconds}


def febrl_benchmark(datasets_dir: Path, config_path: Path,
                    identity_config: Path) -> dict[str, dict[str, Any]]:
    """{"febrl3": {...}, "febrl4": {...}}, each with precision, recall, f1 (pairwise, of
    the predicted pairs), blocking_recall, cluster_precision, cluster_f1 (of the pairs the
    clusters imply), candidate_pairs and seconds. `datasets_dir` holds dataset3.csv,
    dataset4a.csv and dataset4b.csv."""
    mapping, config = load_mapping(config_path), prob.load_model_config(config_path)
    rules = StandardiseRules.from_config(yaml.safe_load(identity_config.read_text()))
    datasets_dir = Path(datasets_dir)
    results = {
        "febrl3": run_benchmark([datasets_dir / "dataset3.csv"], mapping, config, rules),
        "febrl4": run_benchmark([datasets_dir / "dataset4a.csv", datasets_dir / "dataset4b.csv"],
                                mapping, config, rules),
    }
    for name, figures in results.items():
        logger.info("%s: %s", name, {key: round(value, 4) for key, value in figures.items()})
    return results
