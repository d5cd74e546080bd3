"""The quiet terminal: our INFO logs and the libraries' warnings and errors are shown, the
libraries' chatter is not, unless --verbose."""

from __future__ import annotations

import io
import logging
import os
import sys
import sysconfig
import warnings

import pytest
from rich.console import Console

from leadscore.cli.logs import QUIET_ENV, configure_logging, library_prints_hidden

LIBRARY_FILE = os.path.join(sysconfig.get_path("purelib"), "somelib", "module.py")


@pytest.fixture
def console(monkeypatch) -> Console:
    """A console writing to a string; logging, warnings and environment restored afterwards."""
    root, ours, pickle_logger = logging.getLogger(), logging.getLogger("leadscore"), logging.getLogger(
        "mlflow.sklearn")
    saved = root.handlers[:], root.level, ours.level, pickle_logger.filters[:]
    for name in QUIET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    yield Console(file=io.StringIO(), width=200)
    root.handlers[:], ours.level, pickle_logger.filters[:] = saved[0], saved[2], saved[3]
    root.setLevel(saved[1])


def shown(console: Console) -> str:
    return console.file.getvalue()


def test_our_info_logs_and_library_warnings_are_shown_library_info_is_not(console):
    configure_logging(console, verbose=False)
    logging.getLogger("feast.infra.registry.registry").info("Registry cache expired, so refreshing")
    logging.getLogger("splink.internals.linker").info("Iteration 1: Largest change in params")
    logging.getLogger("leadscore.identity.resolve").info("people 520, companies 39")
    logging.getLogger("splink.internals.linker").warning("default value for `max_pairs`")
    assert "people 520" in shown(console) and "max_pairs" in shown(console)
    assert "Registry cache" not in shown(console) and "Iteration" not in shown(console)


def test_verbose_shows_the_libraries_at_debug(console):
    configure_logging(console, verbose=True)
    logging.getLogger("feast.infra.registry.registry").info("Registry cache expired, so refreshing")
    logging.getLogger("leadscore.features.store").debug("read 3 rows")
    assert "Registry cache" in shown(console) and "read 3 rows" in shown(console)


def test_warnings_raised_in_libraries_are_hidden_ours_are_shown(recwarn, console):
    configure_logging(console, verbose=False)  # after recwarn, which resets showwarning
    warnings.warn_explicit("a library's deprecation", UserWarning, LIBRARY_FILE, 1)
    warnings.warn_explicit("a warning about our code", UserWarning, __file__, 1)
    assert [str(warning.message) for warning in recwarn] == ["a warning about our code"]


def test_mlflow_pickle_advice_is_dropped_its_other_warnings_are_not(console):
    configure_logging(console, verbose=False)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    pickle_logger = logging.getLogger("mlflow.sklearn")
    pickle_logger.addHandler(handler)  # MLflow's own handler, once imported, does not propagate
    try:
        pickle_logger.warning("Saving scikit-learn models in the pickle or cloudpickle format ...")
        pickle_logger.warning("Failed to infer the model signature")
    finally:
        pickle_logger.removeHandler(handler)
    assert [record.getMessage() for record in records] == ["Failed to infer the model signature"]


def test_child_processes_are_told_through_the_environment_a_users_value_wins(console, monkeypatch):
    monkeypatch.setenv("PYTHONWARNINGS", "default")
    configure_logging(console, verbose=False)
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert os.environ["PYTHONWARNINGS"] == "default"


@pytest.mark.parametrize("verbose, printed", [(False, ""), (True, "person_fit from 2000-01-03\n")])
def test_library_prints_reach_stdout_only_when_verbose(console, capsys, verbose, printed):
    configure_logging(console, verbose=verbose)
    with library_prints_hidden():
        sys.stdout.write("person_fit from 2000-01-03\n")  # as Feast's print does
    assert capsys.readouterr().out == printed
