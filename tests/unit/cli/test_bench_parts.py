"""`leadscore bench scale|marketing --part`: a part the benchmark does not have is a usage error
naming the valid ones, before anything runs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from leadscore.cli import app


@pytest.mark.parametrize(("area", "valid"), [("scale", "memory, mlflow_postgres, engines"),
                                              ("marketing", "personalize, funnel, truth")])
def test_an_unknown_part_is_refused_with_the_valid_ones(area, valid):
    result = CliRunner().invoke(app, ["bench", area, "--part", "speed"])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # the message as rich's box wraps it
    assert "unknown parts ['speed']" in said and valid in said
