"""A quiet terminal: leadscore's steps, tables and logs, not the libraries' chatter.

Configured once per process, by the root command's callback:

- our loggers (`leadscore.*`) at INFO, every other at WARNING. Feast logs "Registry cache
  expired, so refreshing" at INFO on every registry read that skips its cache (each
  materialised view, each training-set and batch-scoring query: dozens in a small
  pipeline); Splink logs every EM iteration.
- MLflow sets up its own logger when it is imported (inside the commands, so after this):
  it is told through its documented variables, WARNING, no progress bar for each
  artifact download, and no links to a tracking server's runs printed on stdout.
- Python warnings raised inside installed libraries are not shown; those that point at our
  own code still are. (A warnings filter set here would not hold: libraries put their own
  in front when they are imported, as Feast's `simplefilter("once", DeprecationWarning)`.)
- Child processes (`feast apply`, `bentoml serve` and its workers) inherit the MLflow
  variables and a PYTHONWARNINGS that drops deprecation and future warnings.

`--verbose` leaves all of that alone and logs everything at DEBUG.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sysconfig
import warnings
from collections.abc import Iterator

from rich.console import Console
from rich.logging import RichHandler

QUIET_ENV = {
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # on a tracking server MLflow prints two links to stdout at the end of every run, which
    # would also come before a command's --json
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning",
}
_LIBRARY_DIRS = tuple(sorted({sysconfig.get_path(name)
                              for name in ("stdlib", "platstdlib", "purelib", "platlib")}))
_show_warning = warnings.showwarning  # Python's own


def configure_logging(console: Console, verbose: bool) -> None:
    """Log to the rich console: ours at INFO and libraries at WARNING, or all at DEBUG."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)
    logging.getLogger("leadscore").setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose:
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)  # a value set by the user wins
    logging.getLogger("mlflow.sklearn").addFilter(_not_pickle_advice)
    warnings.showwarning = _show_unless_from_library


def _not_pickle_advice(record: logging.LogRecord) -> bool:
    # training/register.py logs the models with cloudpickle on purpose; MLflow repeats its
    # advice against pickle for each of the three candidates of every training.
    return not record.getMessage().startswith("Saving scikit-learn models in the pickle")


def _show_unless_from_library(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning for the warnings that point at our code (or a notebook's)."""
    if not filename.startswith(_LIBRARY_DIRS) and not filename.startswith("<frozen"):
        _show_warning(message, category, filename, lineno, file, line)


@contextlib.contextmanager
def library_prints_hidden() -> Iterator[None]:
    """A library's prints to stdout kept off the terminal unless --verbose (Feast's
    materialize prints each view and its time range; the step line says what was done)."""
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
        yield
