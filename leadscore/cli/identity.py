"""`leadscore identity`: One ID (resolve the raw sources, explain a pair, match any table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import console, frame_table, step
from leadscore.config import Settings

app = typer.Typer(help="One ID: resolve raw records to people and companies.", no_args_is_help=True)


def run_identity(settings: Settings) -> None:
    """Resolve the raw sources and the records ingested live (the event log, compacted in)."""
    from leadscore.identity.engine import identity_sql
    from leadscore.identity.resolve import resolve, rules_from_settings
    from leadscore.live.log import EVENT_LOG, EventLog

    live = None
    if (settings.live_dir / EVENT_LOG).is_file():
        log = EventLog(settings.live_dir / EVENT_LOG)
        live = log.for_batch()
        log.close()
    on = f" on {settings.engine}" if settings.engine != "duckdb" else ""
    with step("identity resolution (One ID)" + on + (" with the records ingested live" if live else "")):
        counts = resolve(settings.raw_dir, settings.middle_db, rules_from_settings(settings), live,
                         identity_sql(settings), settings.identity_duckdb_config)
    counts.index.name = "source"
    console.print(frame_table(f"records per source -> {settings.middle_db}", counts))
    print_unknown_demand(settings)


def print_unknown_demand(settings: Settings) -> None:
    """The UTM values no rule of config/demand_tags.yaml maps: reported, left untagged."""
    from leadscore.identity.demand import unknown_report

    unknown = unknown_report(settings.middle_db)
    if len(unknown):
        console.print(frame_table(f"{len(unknown)} UTM values with no demand tag "
                                  "(add them to config/demand_tags.yaml, or fix the links)",
                                  unknown.set_index("value")[["field", "touches", "people", "examples"]]))


@app.command("resolve")
def identity_resolve(ctx: typer.Context) -> None:
    """Resolve raw records to EID, CID, PID, LID, UID; write the middle layer."""
    run_identity(ctx.obj)


@app.command("explain")
def identity_explain(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="A raw record as SOURCE:RECORD_ID, e.g. form_fills:FF0000990.")],
    b: Annotated[str, typer.Argument(help="The other raw record, same form.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Why two raw records were, or were not, resolved to one person."""
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
    _print_explanation(answer)


def _print_explanation(answer: dict) -> None:
    import pandas as pd

    console.print(f"[bold]{answer['verdict']}[/bold]", soft_wrap=True)
    fields = pd.DataFrame(answer["records"])
    fields.index.name = "field"
    console.print(frame_table("standardised records", fields.fillna("")))
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


@app.command("match")
def identity_match(
    ctx: typer.Context,
    mapping: Annotated[Path, typer.Argument(help="YAML column mapping and model, e.g. "
                                            "config/mappings/febrl.yaml.", exists=True)],
    tables: Annotated[list[Path], typer.Argument(help="One table (dedupe) or two (link); CSV or "
                                                 "Parquet.", exists=True)],
    out: Annotated[Path, typer.Option(help="Where to write the clusters (CSV); the pairs and the "
                                      "threshold report go beside it (NAME.pairs.csv, "
                                      "NAME.thresholds.csv).")] = Path("clusters.csv"),
    threshold: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Match probability at which pairs join a cluster (default: the "
                               "mapping's model.clustering.threshold); the report shows others.")] = None,
    min_probability: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Pairs written to NAME.pairs.csv score at least this.")] = 0.01,
) -> None:
    """Resolve any person table, or link two, with the probabilistic matcher (Splink): clusters,
    scored pairs, and a report of what each threshold would give."""
    from dataclasses import replace

    from leadscore.identity import match_report
    from leadscore.identity import probabilistic as prob
    from leadscore.identity.mapping import load_mapping, standardise_table
    from leadscore.identity.resolve import rules_from_settings

    if len(tables) not in (1, 2):
        raise typer.BadParameter("give one table to deduplicate or two to link")
    settings: Settings = ctx.obj
    try:
        table_mapping, config = load_mapping(mapping), prob.load_model_config(mapping)
    except (ValueError, KeyError) as error:
        raise typer.BadParameter(str(error), param_hint="MAPPING") from None
    clustering = replace(config.clustering, threshold=config.clustering.threshold if threshold is None
                         else threshold)
    config = replace(config, threshold=min(min_probability, clustering.threshold), clustering=clustering)
    rules = rules_from_settings(settings).standardise
    with step(f"{'linking' if len(tables) == 2 else 'deduplicating'} {', '.join(map(str, tables))}"):
        try:
            frames = [standardise_table(_read_table(path), table_mapping, rules, path.name)
                      for path in tables]
            pairs, clusters, _ = prob.resolve(frames, config)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="MAPPING") from None
    for role in prob.unused_roles(config, frames):
        example = f"{{name: {role}, levels: [{{missing: {role}}}, {{exact: {role}}}, else]}}"
        console.print(f"[yellow]warning:[/yellow] the mapped role {role!r} is read by no comparison and no "
                      f"blocking rule, so it is not used as evidence: add one under model.comparisons, "
                      f"e.g. {example}", soft_wrap=True)
    link = len(tables) == 2
    thresholds = sorted({*match_report.THRESHOLDS, clustering.threshold})
    report = match_report.threshold_report(pairs, prob.record_keys(frames), clustering, link,
                                           [t for t in thresholds if t >= config.threshold])
    pairs_out, report_out = out.with_suffix(".pairs.csv"), out.with_suffix(".thresholds.csv")
    clusters.to_csv(out, index=False)
    pairs.to_csv(pairs_out, index=False)
    report.to_csv(report_out, index=False)
    console.print(frame_table("pairs per match probability", match_report.probability_histogram(pairs)))
    console.print(frame_table(f"what each threshold gives (this run: {clustering.threshold})",
                              report.set_index("threshold")))
    kept = int((pairs["match_probability"] >= clustering.threshold).sum())
    console.print(f"  {kept:,} matching pairs, {clusters['cluster_id'].nunique():,} clusters "
                  f"of {len(clusters):,} records -> {out}; {len(pairs):,} scored pairs -> {pairs_out}; "
                  f"report -> {report_out}", soft_wrap=True)
