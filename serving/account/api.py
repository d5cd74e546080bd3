"""`GET /account/{cid}`: the account page, for the account's owning rep (and roles that see every
account), with the portrait's rules: permission `portrait`, another rep's account answered as an
unknown one, contacts masked, every answer to a known caller audited (action `account`)."""


from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse

from leadscore.access.audit import AuditLog
from leadscore.access.auth import AuthError, Caller
from leadscore.serving.account.reader import AccountReader, UnknownAccount
from leadscore.serving.account.render import render_account_html
from leadscore.serving.account.schemas import AccountPage
from leadscore.serving.portrait.errors import PortraitUnavailable
from leadscore.serving.schemas import AccountScoreResponse

ACCOUNT_ROUTE = "/account/{cid}"


def build_router(pages: AccountReader, account_score: Callable[[str], AccountScoreResponse | None],
                 caller: Callable, audit: AuditLog, prefers_html: Callable[[Request], bool]) -> APIRouter:
    """The account page's route; `account_score(cid)` scores a company (None: no account model)."""
    router = APIRouter(tags=["accounts"])

    @router.get(ACCOUNT_ROUTE, response_model=AccountPage,
                responses={200: {"content": {"text/html": {}}},
                           403: {"description": "A role that may not read portraits or account pages"},
                           404: {"description": "No such company, or one of another rep's accounts"},
                           503: {"description": "The middle layer cannot be read right now"}},
                openapi_extra={"x-permission": "portrait"})  # checked in the route: a 403 is audited
    def account_page(cid: Annotated[str, Path(max_length=64, description="The company (CID).")],
                     request: Request, who: Annotated[Caller, Depends(caller)],
                     format: Annotated[str | None, Query(pattern="^(json|html)$",
                                                         description="json or html (default: by the "
                                                                     "Accept header)")] = None):
        """A company's people, who is engaging, who is missing from the buying committee, and the
        account's score with its reasons. Sales see their own accounts only; another rep's CID is
        answered as an unknown one (404)."""
        def refuse(status: int, message: str) -> HTTPException:
            audit.record(who, "account", cid, status, [])
            return HTTPException(status, message)

        try:
            who.require("portrait")
        except AuthError as error:
            raise refuse(error.status, error.message) from None
        try:
            if not who.may_see_account_of(pages.owner(cid)):
                audit.record(who, "account", cid, 404, [], {"refused": "an account the caller does not own"})
                raise HTTPException(404, str(UnknownAccount("cid", cid)))
            page = pages.page(cid, account_score(cid))
        except UnknownAccount as error:
            raise refuse(404, str(error)) from None
        except PortraitUnavailable as error:
            raise refuse(503, f"account pages are unavailable for a moment: {error}") from None
        audit.record(who, "account", cid, 200, page.fields_read())
        if format == "html" or (format is None and prefers_html(request)):
            return HTMLResponse(render_account_html(page, who.employee_id or who.name))
        return page

    return router
