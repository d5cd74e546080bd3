"""The `leadscore` command: one subcommand per stage, in pipeline order.

    leadscore synth                 generate the synthetic B2B world (raw sources + truth)
    leadscore identity resolve      raw sources -> One ID middle layer (DuckDB)
    leadscore identity explain A B  why two raw records are (not) one person
    leadscore identity match MAP T  any person table (or two) through the probabilistic matcher
    leadscore features build        middle layer -> feature views and tags (Parquet)
    leadscore features apply        `feast apply` on the feature repo
    leadscore features materialize  offline -> online store (SQLite or Redis)
    leadscore train                 rule baseline, logistic regression, LightGBM -> MLflow
    leadscore train table SPEC      the same on any flat table described by a YAML
    leadscore train rollback V      make an earlier registered version champion again
    leadscore score                 batch scores of everyone (and their history) with the champion
    leadscore serve                 the BentoML service: scores, portraits, segments
    leadscore pipeline              everything from synth to batch scores, in one process
    leadscore bench AREA --json     benchmark figures against the goals (identity, features,
                                    training, serving, segments)

Heavy libraries are imported inside the commands, so `leadscore --help` is quick.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, Settings, load_settings, load_yaml

app = typer.Typer(help="leadscore: B2B lead scoring with One ID, Feast, MLflow and BentoML.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
identity_app = typer.Typer(help="One ID: resolve raw records to people and companies.",
                           no_args_is_help=True)
features_app = typer.Typer(help="The Feast feature store: build, apply, materialise.",
                           no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: `leadscore bench AREA --json` prints one JSON object.",
                        no_args_is_help=True)
app.add_typer(identity_app, name="identity")
app.add_typer(features_app, name="features")
train_app = typer.Typer(help="Training: the three models, MLflow registry, rollback.")
app.add_typer(train_app, name="train")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
log = logging.getLogger("leadscore")


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Settings file (default: $LEADSCORE_CONFIG or config/leadscore.yaml).",
        exists=True, dir_okay=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Where build output goes (default: paths.data_dir of the settings).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Load the settings once; every subcommand receives them."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)
    try:
        settings = load_settings(config)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--config") from None
    if data_dir is not None:
        settings = settings.with_data_dir(data_dir.resolve(), settings.mlflow_dir)
    ctx.obj = settings
    # Child processes (feast apply, bentoml serve) read the same settings and data.
    os.environ[SETTINGS_ENV_VAR] = str(settings.source)
    os.environ[DATA_DIR_ENV_VAR] = str(settings.data_dir)


@contextmanager
def step(title: str) -> Iterator[None]:
    """A spinner while a stage runs, then its duration."""
    start = time.perf_counter()
    with console.status(f"[bold]{title}[/bold] ..."):
        yield
    console.print(f"[green]✓[/green] {title} [dim]({time.perf_counter() - start:.1f} s)[/dim]")


def _table(title: str, frame) -> Table:
    table = Table(title=title)
    table.add_column(frame.index.name or "")
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for index, row in frame.iterrows():
        table.add_row(str(index), *[str(value) for value in row])
    return table


def run_synth(settings: Settings, seed: int | None, scale: float | None) -> None:
    from leadscore.synth import generate_world, write_world

    world_settings = settings.world.model_copy(update={
        k: v for k, v in {"seed": seed, "scale": scale}.items() if v is not None})
    with step(f"synthetic world (seed {world_settings.seed}, scale {world_settings.scale})"):
        world = generate_world(world_settings)
        write_world(world, settings.raw_dir, settings.truth_dir)
    counts = {name: len(frame) for name, frame in world.sources.items()}
    console.print(f"  raw sources in {settings.raw_dir}: " +
                  ", ".join(f"{name} {count:,}" for name, count in counts.items()))


def run_identity(settings: Settings) -> None:
    from leadscore.identity.resolve import resolve, rules_from_settings

    with step("identity resolution (One ID)"):
        counts = resolve(settings.raw_dir, settings.middle_db, rules_from_settings(settings))
    counts.index.name = "source"
    console.print(_table(f"records per source -> {settings.middle_db}", counts))


def run_features_build(settings: Settings, incremental: bool = False) -> dict:
    from leadscore.features.build import FitRules, build_features
    from leadscore.features.catalog import settings_catalog

    config = load_yaml(settings.config_file("features.yaml"))
    with step("feature tables (DuckDB SQL)"):
        manifest = build_features(
            settings.middle_db, settings.feature_data_dir,
            settings_catalog(settings),
            FitRules(config["decision_maker_levels"], config["employee_bands"]),
            settings.features.step_days, load_yaml(settings.config_file("tags.yaml")), incremental)
    console.print(f"  {manifest['mode']} build as of {manifest['as_of']}: {manifest['rows']}")
    return manifest


def run_features_apply(settings: Settings) -> None:
    from leadscore.features import store

    with step("feast apply"):
        store.apply(settings, settings.source)


def run_features_materialize(settings: Settings, full: bool = False) -> None:
    from leadscore.features import store
    from leadscore.features.build import read_manifest, write_manifest

    manifest = read_manifest(settings.feature_data_dir)
    with step(f"feast materialize up to {manifest['as_of']:%Y-%m-%d}"):
        mode = store.materialize(store.open_store(settings), manifest["as_of"],
                                 full=full or manifest.get("online_reload", False))
    write_manifest(settings.feature_data_dir, {**manifest, "online_reload": False})
    console.print(f"  {mode} load into the online store")


def run_train(settings: Settings) -> None:
    from leadscore.features.build import read_manifest
    from leadscore.features.store import open_store
    from leadscore.training.train import train

    manifest = read_manifest(settings.feature_data_dir)
    with step("training: rule baseline, logistic regression, LightGBM"):
        outcome = train(settings, open_store(settings), manifest)
    _print_outcome(settings, outcome)


def run_score(settings: Settings) -> None:
    from leadscore.serving.batch import score_everyone
    from leadscore.serving.champion import ChampionWatcher
    from leadscore.serving.webhook import MqlPusher

    with step("batch scoring: everyone, with score history"):
        scorer = ChampionWatcher(settings).scorer
        with MqlPusher(settings.serving.webhook, settings.serving_dir) as pusher:
            summary = score_everyone(settings, scorer, pusher)
    console.print(f"  {summary.people:,} people at {len(summary.times)} times "
                  f"({summary.times[0]:%Y-%m-%d} .. {summary.times[-1]:%Y-%m-%d}) with model version "
                  f"{scorer.version} -> {summary.path}", soft_wrap=True)
    console.print("  latest tiers: " + ", ".join(f"{tier} {n:,}" for tier, n in summary.by_tier.items()))
    if summary.queued_for_crm:
        console.print(f"  {summary.queued_for_crm:,} new MQLs queued for the CRM webhook: "
                      "`leadscore serve` delivers them (with retries)", soft_wrap=True)


def _print_outcome(settings: Settings, outcome) -> None:
    for flag in outcome.leakage.excluded:
        console.print(f"  [yellow]leakage guard excluded {flag.column}[/yellow]: {flag.reason}",
                      soft_wrap=True)
    table = outcome.table
    table.index.name = "model"
    console.print(_table(f"test window metrics (MLflow: {settings.tracking_uri})", table),
                  soft_wrap=True)


@app.command()
def synth(
    ctx: typer.Context,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: world.seed).")] = None,
    scale: Annotated[float | None, typer.Option(
        help="Multiply every size (default: world.scale); 0.1 is a quick small world.")] = None,
) -> None:
    """Generate the synthetic B2B world: raw source systems and, apart, the ground truth."""
    run_synth(ctx.obj, seed, scale)


@identity_app.command("resolve")
def identity_resolve(ctx: typer.Context) -> None:
    """Resolve raw records to EID, CID, PID, LID, UID; write the middle layer."""
    run_identity(ctx.obj)


@identity_app.command("explain")
def identity_explain(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="A raw record as SOURCE:RECORD_ID, e.g. form_fills:FF0000990.")],
    b: Annotated[str, typer.Argument(help="The other raw record, same form.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Why two raw records were, or were not, resolved to one person."""
    import pandas as pd

    from leadscore.identity.explain import explain

    settings: Settings = ctx.obj
    try:
        answer = explain(settings.middle_db, a, b)
    except (LookupError, ValueError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    console.print(f"[bold]{answer['verdict']}[/bold]", soft_wrap=True)
    fields = pd.DataFrame(answer["records"])
    fields.index.name = "field"
    console.print(_table("standardised records", fields.fillna("")))
    for shared in answer["shared_identifiers"]:
        use = "evidence" if shared["used_as_evidence"] else (
            f"not evidence: seen with {shared['distinct_names']} different names")
        console.print(f"  shares {shared['identifier']} ({use})", soft_wrap=True)
    if answer["chain"]:
        console.print("  chain: " + " -> ".join(answer["chain"]), soft_wrap=True)
    for row in answer["comparisons"]:
        console.print(f"  {row['comparison']}: {row['level']} (match weight {row['match_weight']:+.2f})",
                      soft_wrap=True)


def _read_table(path: Path):
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, skipinitialspace=True, dtype=str)


@identity_app.command("match")
def identity_match(
    ctx: typer.Context,
    mapping: Annotated[Path, typer.Argument(help="YAML column mapping and model, e.g. "
                                            "config/mappings/febrl.yaml.", exists=True)],
    tables: Annotated[list[Path], typer.Argument(help="One table (dedupe) or two (link); CSV or "
                                                 "Parquet.", exists=True)],
    out: Annotated[Path, typer.Option(help="Where to write the clusters (CSV).")] = Path("clusters.csv"),
) -> None:
    """Resolve any person table, or link two, with the probabilistic matcher (Splink)."""
    from leadscore.identity import probabilistic as prob
    from leadscore.identity.mapping import load_mapping, standardise_table
    from leadscore.identity.resolve import rules_from_settings

    if len(tables) not in (1, 2):
        raise typer.BadParameter("give one table to deduplicate or two to link")
    settings: Settings = ctx.obj
    table_mapping, config = load_mapping(mapping), prob.load_model_config(mapping)
    rules = rules_from_settings(settings).standardise
    with step(f"{'linking' if len(tables) == 2 else 'deduplicating'} {', '.join(map(str, tables))}"):
        frames = [standardise_table(_read_table(path), table_mapping, rules, path.name)
                  for path in tables]
        pairs, clusters, _ = prob.resolve(frames, config)
    clusters.to_csv(out, index=False)
    console.print(f"  {len(pairs):,} matching pairs, {clusters['cluster_id'].nunique():,} clusters "
                  f"of {len(clusters):,} records -> {out}", soft_wrap=True)


@features_app.command("build")
def features_build(
    ctx: typer.Context,
    incremental: Annotated[bool, typer.Option(
        help="Add only the times after the last build (the daily job); full when definitions "
             "changed. Rebuild in full after identity merges rewrote history.")] = False,
) -> None:
    """Compute the feature views (fit, interest, buying committee) and tags from the middle layer."""
    run_features_build(ctx.obj, incremental)


@features_app.command("apply")
def features_apply(ctx: typer.Context) -> None:
    """Register the feature repo with `feast apply`."""
    run_features_apply(ctx.obj)


@features_app.command("materialize")
def features_materialize(
    ctx: typer.Context,
    full: Annotated[bool, typer.Option(
        help="Reload every view from the start (after a rebuild that rewrote history).")] = False,
) -> None:
    """Load feature values up to the feature clock into the online store: incrementally
    (Feast's materialize-incremental) once a first full load has been done."""
    run_features_materialize(ctx.obj, full)


@train_app.callback(invoke_without_command=True)
def train(ctx: typer.Context) -> None:
    """Train and compare the three models on the Feast training set; register the best."""
    if ctx.invoked_subcommand is None:
        run_train(ctx.obj)


@train_app.command("table")
def train_table(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="YAML describing the table (see config/tables/).")],
) -> None:
    """Train the same three models on any flat table (one row per lead), logged to MLflow."""
    from leadscore.training.flat import load_spec
    from leadscore.training.flat import train_table as run

    settings: Settings = ctx.obj
    try:
        table_spec = load_spec(spec, settings)
        with step(f"training on {table_spec.name}: rule baseline, logistic regression, LightGBM"):
            outcome = run(table_spec, settings)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from error
    _print_outcome(settings, outcome)


@train_app.command("rollback")
def train_rollback(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="The registered version to make champion again.")],
) -> None:
    """Put an earlier version of the lead model back as champion (a running service picks it up
    within serving.model_check_s seconds)."""
    from leadscore.training.register import rollback

    settings: Settings = ctx.obj
    try:
        previous = rollback(settings, version)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="VERSION") from error
    console.print(f"{settings.training.registered_model}: champion is version {version} "
                  f"(was {previous or 'none'})")


@app.command()
def score(ctx: typer.Context) -> None:
    """Score everyone with the champion (now and at earlier times: the score history that
    portraits and segments read), and queue new MQLs for the CRM webhook."""
    run_score(ctx.obj)


@app.command()
def pipeline(
    ctx: typer.Context,
    seed: Annotated[int | None, typer.Option(help="Random seed of the world.")] = None,
    scale: Annotated[float | None, typer.Option(help="Size multiplier of the world.")] = None,
) -> None:
    """Run every stage from the synthetic world to a registered champion and batch scores.

    A new world means new people: the Feast registry and online store of the data
    dir are rebuilt from scratch, so no PID of an earlier world stays online.
    """
    settings: Settings = ctx.obj
    shutil.rmtree(settings.data_dir / "feast", ignore_errors=True)
    run_synth(settings, seed, scale)
    run_identity(settings)
    run_features_build(settings)
    run_features_apply(settings)
    run_features_materialize(settings)  # in full: the build was
    run_train(settings)
    run_score(settings)


def sample_pids(settings: Settings, n: int = 3) -> list[tuple[str, str | None]]:
    """(PID, owning rep) worth trying: the most engaged people at the feature clock's 'now'."""
    import duckdb

    path = settings.feature_data_dir / "person_interest.parquet" / "*.parquet"
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        return con.execute(f"""
            WITH now AS (SELECT pid, events_30d FROM read_parquet('{path}')
                         WHERE event_timestamp = (SELECT max(event_timestamp) FROM read_parquet('{path}')))
            SELECT now.pid, coalesce(c.owner_rep_id, p.owner_rep_id)
            FROM now JOIN person p USING (pid) LEFT JOIN company c ON c.cid = p.cid
            ORDER BY now.events_30d DESC, now.pid LIMIT {n}""").fetchall()


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
) -> None:
    """Start the BentoML service (`bentoml serve`) and show how to call it."""
    settings: Settings = ctx.obj
    port = port or settings.serving.port
    url = f"http://{settings.serving.host}:{port}"
    samples = sample_pids(settings)
    say = functools.partial(console.print, soft_wrap=True, highlight=False, markup=False)
    console.print(f"\n[bold]leadscore is starting at {url}[/bold] (API docs at {url}/api/docs; "
                  f"demo keys and roles in {settings.config_file(settings.serving.access_file)})",
                  soft_wrap=True)
    say("Score the most engaged people right now, as the CRM:")
    for pid, _ in samples:
        say(f"  curl -s -X POST {url}/score -H 'X-API-Key: demo-crm-key' "
            f"-H 'content-type: application/json' -d '{{\"pid\": \"{pid}\"}}'")
    pid, owner = next((sample for sample in samples if sample[1]), samples[0])
    say(f"Open a portrait as its account's sales rep: {url}/login?next=/portrait/{pid} "
        f"with the key demo-sales-{owner} (another rep's key is refused)")
    say(f"Build a segment as a marketer: {url}/login?next=/segments/page with the key demo-marketer-key")
    from leadscore.serving import OVERRIDES_ENV_VAR, bentoml_overrides

    bentoml = Path(sys.executable).parent / "bentoml"
    command = [str(bentoml), "serve", "leadscore.serving.service:LeadScoring",
               "--host", settings.serving.host, "--port", str(port)]
    env = {**os.environ, OVERRIDES_ENV_VAR: bentoml_overrides(workers=settings.serving.workers)}
    raise typer.Exit(subprocess.call(command, cwd=settings.root, env=env))


def _rounded(value: object) -> object:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, 5) if isinstance(value, float) else value


def _emit(figures: dict, as_json: bool) -> None:
    figures = _rounded(figures)
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        console.print_json(json.dumps(figures))


@bench_app.command("identity")
def bench_identity(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
    quick: Annotated[bool, typer.Option(help="Small worlds only (0.1 and 0.02 of the default).")] = False,
) -> None:
    """Identity quality against the hidden truth (default world), speed at 100k and 1M records,
    and the probabilistic matcher on FEBRL (../shared/datasets/febrl)."""
    from leadscore.benchmarks.identity import (
        febrl_benchmark,
        resolve_exact_only,
        speed,
        synthetic_quality,
    )

    settings: Settings = ctx.obj
    work = settings.data_dir / "bench" / "identity"
    scales = {"20k": 0.02, "100k": 0.1} if quick else {"100k": 0.1, "1m": 1.0}
    with step("identity benchmark: generate and resolve worlds"):
        figures = {"speed": speed(settings, work, scales)}
        largest = work / list(scales)[-1]
        quality = synthetic_quality(largest / "middle.duckdb", largest / "truth")
        exact = synthetic_quality(resolve_exact_only(settings.source, largest), largest / "truth")
    figures["synthetic"] = {**quality, "exact_only_f1": exact["f1"],
                            "exact_only_precision": exact["precision"],
                            "exact_only_recall": exact["recall"], "world_scale": scales[largest.name]}
    febrl_dir = settings.datasets_dir / "febrl"
    if febrl_dir.is_dir():
        with step("FEBRL3 dedupe and FEBRL4 link (Splink)"):
            figures.update(febrl_benchmark(febrl_dir, settings.config_file("mappings/febrl.yaml"),
                                           settings.config_file("identity.yaml")))
    else:
        console.print(f"[yellow]FEBRL skipped: {febrl_dir} not found[/yellow]")
    _emit(figures, as_json)


@bench_app.command("features")
def bench_features(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Feature build (current world in full; a week's increment of a 1M-person copy),
    materialisation, and online reads of one PID from SQLite and a real Redis."""
    from leadscore.benchmarks.features import run

    settings: Settings = ctx.obj
    with step("feature benchmark: build, materialise, read online"):
        figures = run(settings, settings.data_dir / "bench" / "features")
    _emit(figures, as_json)


@bench_app.command("training")
def bench_training(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Rule baseline, logistic regression and LightGBM on the synthetic world, X Education and
    Olist (test window figures, leakage guard), and training speed on 1M rows."""
    from leadscore.benchmarks.training import run

    settings: Settings = ctx.obj
    with step("training benchmark: three datasets and 1M rows"):
        figures = run(settings, settings.data_dir / "bench" / "training")
    _emit(figures, as_json)


@bench_app.command("serving")
def bench_serving(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """The service under load (`bentoml serve`, side by side with a bare constant endpoint):
    /score latency and throughput, batch scoring with reasons against LightGBM's pred_contrib,
    and portraits."""
    from leadscore.benchmarks.serving import run

    settings: Settings = ctx.obj
    with step("serving benchmark: the service and a reference endpoint under load"):
        figures = run(settings, settings.data_dir / "bench" / "serving")
    _emit(figures, as_json)


@bench_app.command("segments")
def bench_segments(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Segment counts (the seed example and a ten-condition segment) at the default world and
    at 10x."""
    from leadscore.benchmarks.segments import run_benchmark

    settings: Settings = ctx.obj
    with step("segments benchmark: counts at 1x and 10x"):
        figures = run_benchmark(settings)
    _emit(figures, as_json)


if __name__ == "__main__":
    app()
