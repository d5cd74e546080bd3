"""`leadscore marketing`: the funnel, campaign ROI, a bottom-up plan, lifecycle, demand tags and
contact frequency (marketing/)."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadscore.cli.common import console, frame_table, step
from leadscore.config import Settings

if TYPE_CHECKING:  # pandas loads with the command that needs it: `leadscore --help` stays quick
    import pandas as pd

app = typer.Typer(help="Marketing: lifecycle funnel, campaign ROI, planning, demand tags, contact frequency.",
                  no_args_is_help=True)

CsvOption = Annotated[Path | None, typer.Option("--csv", help="Also write the table to this CSV file.",
                                                dir_okay=False)]
ROI_COLUMNS = ["name", "channel", "cost_usd", "lead", "mql", "opportunity", "won_deals_first_touch",
               "cost_per_lead", "cost_per_opportunity", "cost_per_won_deal", "revenue_usd_first_touch",
               "revenue_usd_last_touch", "revenue_usd_linear", "engaged_share"]

RATE_SHOWN = ["people", "sends", "open_rate", "click_rate"]
CAP_SHOWN = ["segment", "interest", "turning_point", "cap_sends_per_month"]

def show(title: str, frame: pd.DataFrame, index: str, csv: Path | None,
         columns: list[str] | None = None) -> None:
    """Print the frame (rounded, the chosen columns) and write all of it to `csv`."""
    shown = frame.set_index(index)[columns] if columns else frame.set_index(index)
    console.print(frame_table(title, shown.round(3)))
    write_csv(frame, csv)


def write_csv(frame: pd.DataFrame, csv: Path | None) -> None:
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(csv, index=False)
        console.print(f"wrote {len(frame):,} rows to {csv}")


def _fail(error: Exception) -> None:
    console.print(f"[red]{error}[/red]")
    raise typer.Exit(1)


@app.command("funnel")
def marketing_funnel(
    ctx: typer.Context,
    by: Annotated[list[str], typer.Option(
        "--by", help="campaign, channel, campaign_type, demand_tag, tier or month; repeat for several.")]
        = ["channel"],  # noqa: B006 (typer reads the default)
    csv: CsvOption = None,
) -> None:
    """Funnel conversion stage to stage (lead, MQL, accepted, opportunity, customer) by group."""
    from leadscore.marketing.funnel import funnel_by

    try:
        with step(f"funnel by {', '.join(by)}"):
            frame = funnel_by(ctx.obj, by)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    shown = frame.assign(group=frame[by].astype(str).agg(" / ".join, axis=1)).drop(columns=by)
    show(f"funnel by {' / '.join(by)}", shown, "group", None)
    write_csv(frame, csv)  # one column per dimension


@app.command("roi")
def marketing_roi(ctx: typer.Context, csv: CsvOption = None,
                  top: Annotated[int, typer.Option(help="Campaigns shown (by linear revenue); "
                                                        "the CSV holds all.")] = 20) -> None:
    """Campaign ROI: cost, reach, engagement, leads to won deals, cost per stage, attribution."""
    from leadscore.marketing.funnel import campaign_roi

    try:
        with step("campaign ROI"):
            frame = campaign_roi(ctx.obj)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    shown = frame.nlargest(top, "revenue_usd_linear")
    console.print(frame_table(f"top {len(shown)} of {len(frame)} campaigns by linear revenue",
                              shown.set_index("campaign_id")[ROI_COLUMNS].round(2)))
    write_csv(frame, csv)


@app.command("plan")
def marketing_plan(
    ctx: typer.Context,
    campaign_type: Annotated[str, typer.Argument(help="A campaign type (e.g. dataplat-search, webinar).")],
    won: Annotated[float, typer.Option("--won", help="Target of won deals.", min=0)] = 10,
    csv: CsvOption = None,
) -> None:
    """Bottom-up plan: the reach a campaign type needs for a target of won deals."""
    from leadscore.marketing.planning import plan

    try:
        frame = plan(ctx.obj, campaign_type, won)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    show(f"{campaign_type}: what {won:g} won deals need (historical rates of "
         f"{frame['campaigns'].iloc[0]} campaigns)", frame[["stage", "historical", "rate_to_next", "needed"]],
         "stage", csv)


@app.command("lifecycle")
def marketing_lifecycle(ctx: typer.Context, csv: CsvOption = None) -> None:
    """Build the lifecycle stage history (kept across builds) and show where people stand now."""
    from leadscore.marketing.lifecycle import build_lifecycle, current_stages, history_path

    settings: Settings = ctx.obj
    try:
        with step("lifecycle stage history"):
            history = build_lifecycle(settings)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    now = current_stages(history)["stage"].value_counts().rename_axis("stage").reset_index(name="people")
    show(f"current stage of {history['pid'].nunique():,} people -> {history_path(settings)}",
         now, "stage", None)
    write_csv(history, csv)


@app.command("tags")
def marketing_tags(ctx: typer.Context, csv: CsvOption = None) -> None:
    """The UTM values config/demand_tags.yaml does not map (reported, never tagged)."""
    from leadscore.identity.demand import unknown_report

    settings: Settings = ctx.obj
    frame = unknown_report(settings.middle_db)
    if frame.empty:
        console.print("every UTM value maps to a demand tag (or is declared untagged)")
    show(f"{len(frame)} unknown UTM values", frame, "value", csv)


def saved_segment_caps(settings: Settings) -> pd.DataFrame:
    """Each saved segment's turning points and caps (marketing/frequency.py `segment_caps`)."""
    import pandas as pd

    from leadscore.marketing.frequency import caps_table
    from leadscore.segments.engine import SegmentEngine

    engine = SegmentEngine(settings)
    tables = [caps_table(engine.frequency_caps(record["segment"]), record["name"] or record["id"])
              for record in (engine.saved(summary["id"]) for summary in engine.store.list())]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _shown(frame: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """`frame` as text for the terminal: counts with separators, other numbers to 3 figures,
    none as -."""
    import pandas as pd

    def text(value: object) -> str:
        if pd.isna(value):
            return "-"
        if isinstance(value, numbers.Integral):
            return f"{value:,}"
        return f"{value:.3g}" if isinstance(value, numbers.Real) else str(value)

    shown = frame.astype(object).map(text).set_index(index)
    shown.index = [" ".join(parts) for parts in shown.index] if len(index) > 1 else shown.index
    shown.index.name = ", ".join(index)
    return shown


@app.command()
def frequency(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help=(
        "CSV of the curves (default: <data_dir>/marketing/frequency.csv; the caps beside it, "
        "frequency_caps.csv)."))] = None,
) -> None:
    """Email open and click rates by sends a month, for people who showed interest in a product
    and people who did not; where more sends lower the rate, and a cap for everyone and each
    saved segment."""
    import pandas as pd

    from leadscore.marketing.frequency import frequency_table

    settings: Settings = ctx.obj
    out = out or settings.data_dir / "marketing" / "frequency.csv"
    try:
        with step("contact frequency: email rates by sends a month"):
            table = frequency_table(settings)
        with step("caps of the saved segments"):
            caps = saved_segment_caps(settings)
    except FileNotFoundError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    rates = table[["interest", "sends_per_month", *RATE_SHOWN]]
    console.print(frame_table("Email rates by sends a month (the emails of the 30 days up to each)",
                              _shown(rates, ["interest", "sends_per_month"])))
    everyone = table.groupby("interest", as_index=False)[["turning_point", "cap_sends_per_month"]].first()
    caps = pd.concat([everyone.assign(segment="all people"), caps], ignore_index=True)[CAP_SHOWN]
    console.print(frame_table("Turning points and caps (sends a month; -: none, more sends never lower "
                              "the rate)", _shown(caps, ["segment"])))
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    caps.to_csv(out.with_name(out.stem + "_caps.csv"), index=False)
    console.print(f"wrote {out} and {out.with_name(out.stem + '_caps.csv')}")
