"""`leadscore marketing ...`: marketing's analyses (marketing/)."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadscore.cli.common import console, frame_table, step
from leadscore.config import Settings

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(help="Marketing's analyses: contact frequency.", no_args_is_help=True)
RATE_SHOWN = ["people", "sends", "open_rate", "click_rate"]
CAP_SHOWN = ["segment", "interest", "turning_point", "cap_sends_per_month"]


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
