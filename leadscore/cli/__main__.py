"""`python -m leadscore.cli`, the same as the `leadscore` command."""

from leadscore.cli import app

app()
