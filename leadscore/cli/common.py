"""What the commands share: the terminal (a rich console on stderr, so that stdout stays
free for JSON), a spinner and duration for each step, data frames shown as tables."""

from __future__ import annotations

import numbers
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.status import Status
from rich.table import Table

console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


@dataclass
class Step:
    """What a finished step says it did, and its spinner (`progress` tells how far it is)."""

    title: str
    status: Status | None = None

    def progress(self, text: str) -> None:
        """Say beside the spinner how far the step is."""
        if self.status is not None:
            self.status.update(f"[bold]{self.title}[/bold] {text}")


@contextmanager
def step(title: str) -> Iterator[Step]:
    """A spinner while a stage runs, then its duration, under the title the stage may have set
    once it knows what it did (`Step.title`)."""
    start = time.perf_counter()
    with console.status(f"[bold]{title}[/bold] ...") as status:
        done = Step(title, status)
        yield done
    console.print(f"[green]✓[/green] {done.title} [dim]({time.perf_counter() - start:.1f} s)[/dim]")


def frame_table(title: str, frame) -> Table:
    """A pandas frame as a rich table: its index first, numbers right-aligned."""
    table = Table(title=title)
    table.add_column(frame.index.name or "")
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for index, *values in frame.itertuples(name=None):  # each column's own type (iterrows: one per row)
        table.add_row(str(index), *[table_cell(value) for value in values])
    return table


def table_cell(value: object) -> str:
    """A value as a table shows it: counts with thousands separators (6,441, not 6441.0), other
    numbers to three decimals at most (below 1, three significant digits), a missing one as a
    dash (not nan)."""
    if value is None or str(value) in ("nan", "<NA>", "NaT"):  # pandas' and NumPy's missing values
        return "-"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    number = float(value)
    if number.is_integer():
        return f"{int(number):,}"
    if abs(number) < 1:  # a rate or a difference: three significant digits (0.0004, not 0)
        return f"{number:.3g}"
    return f"{number:,.3f}".rstrip("0").rstrip(".")
