"""The account page's HTML: serving/templates/account.html, filled from an `AccountPage` with the
portrait's environment and filters (`when`, `ago`, `number`, `money`, `words`, `signed`)."""

from __future__ import annotations

from datetime import UTC, datetime

from leadscore.serving.account.schemas import AccountPage
from leadscore.serving.portrait.render import portrait_environment


def render_account_html(page: AccountPage, viewer_employee_id: str, viewed_at: datetime | None = None) -> str:
    """The account page as one self-contained HTML page, naming its viewer."""
    return portrait_environment().get_template("account.html").render(
        page=page, viewer=viewer_employee_id, viewed_at=viewed_at or datetime.now(UTC))
