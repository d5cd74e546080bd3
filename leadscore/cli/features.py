"""`leadscore features`: the Feast feature store (build the views, apply, materialise)."""

from __future__ import annotations

from typing import Annotated

import typer

from leadscore.cli.common import console, step
from leadscore.cli.logs import library_prints_hidden
from leadscore.config import Settings, load_yaml

app = typer.Typer(help="The Feast feature store: build, apply, materialise.", no_args_is_help=True)


def run_features_build(settings: Settings, incremental: bool = False) -> dict:
    from leadscore.features.build import FitRules, build_features
    from leadscore.features.catalog import settings_catalog
    from leadscore.spark import spark_session

    config = load_yaml(settings.config_file("features.yaml"))
    spark = spark_session(settings.spark) if settings.engine == "spark" else None
    with step(f"feature tables ({'Spark' if spark else 'DuckDB'} SQL)"):
        manifest = build_features(
            settings.middle_db, settings.feature_data_dir,
            settings_catalog(settings),
            FitRules(config["decision_maker_levels"], config["employee_bands"]),
            settings.features.step_days, load_yaml(settings.config_file("tags.yaml")), incremental,
            duckdb_config=settings.duckdb_config, spark=spark)
    console.print(f"  {manifest['mode']} build as of {manifest['as_of']}: {manifest['rows']}")
    return manifest


def run_features_apply(settings: Settings) -> None:
    from leadscore.features import store

    with step("feast apply"):
        store.apply(settings, settings.source)


def run_features_materialize(settings: Settings, full: bool = False) -> None:
    """Load the online store up to the build's time; the people whose rows the live path had
    written from records the build did not hold are marked for the service's live update."""
    from leadscore.features import store
    from leadscore.features.build import read_manifest, write_manifest
    from leadscore.live.online import mark_behind_a_load

    manifest = read_manifest(settings.feature_data_dir)
    with step(f"feast materialize up to {manifest['as_of']:%Y-%m-%d}") as done, library_prints_hidden():
        mode = store.materialize(store.open_store(settings), manifest["as_of"],
                                 full=full or manifest.get("online_reload", False),
                                 progress=lambda view, rows: done.progress(f"{view}: {rows:,} rows"))
    write_manifest(settings.feature_data_dir, {**manifest, "online_reload": False})
    console.print(f"  {mode} load into the online store")
    if behind := mark_behind_a_load(settings):
        console.print(f"  {len(behind)} people updated live from records the build did not hold: "
                      "due for the live update")


@app.command("build")
def features_build(
    ctx: typer.Context,
    incremental: Annotated[bool, typer.Option(
        help="Add only the times after the last build (the daily job); full when definitions "
             "changed. Rebuild in full after identity merges rewrote history.")] = False,
) -> None:
    """Compute the feature views (fit, interest, buying committee) and tags from the middle layer."""
    run_features_build(ctx.obj, incremental)


@app.command("apply")
def features_apply(ctx: typer.Context) -> None:
    """Register the feature repo with `feast apply`."""
    run_features_apply(ctx.obj)


@app.command("materialize")
def features_materialize(
    ctx: typer.Context,
    full: Annotated[bool, typer.Option(
        help="Reload every view from the start (after a rebuild that rewrote history).")] = False,
) -> None:
    """Load feature values up to the feature clock into the online store: incrementally
    (Feast's materialize-incremental) once a first full load has been done."""
    run_features_materialize(ctx.obj, full)
