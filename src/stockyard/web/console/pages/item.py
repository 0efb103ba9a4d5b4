"""One queue item: its payload, attempts, children and audit, with its context (lane,
connection, catalog, other failures of its SKU, a newer update making it stale); retrying
or skipping it, after a confirmation."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from stockyard.engine import ItemFilter
from stockyard.errors import Forbidden, InvalidInput
from stockyard.service import ACTIONS
from stockyard.web.console.auth import check_csrf
from stockyard.web.console.pages.common import Page, _back, error_summary
from stockyard.web.query import Id

router = APIRouter()
EFFECTS = {
    "retry": [
        "The item goes back to the head of its lane and runs again as soon as a worker"
        " is free; what waits behind it runs after it.",
        # A retry sends what failed once more: it only helps once the cause is gone.
        "Fixed the cause (e.g. in the ERP)? A retry runs the same data again.",
    ],
    "skip": [
        "The item is given up for good: it never runs, and no one can retry it later.",
        "If it blocks its lane, the lane moves on to the next item.",
    ],
}


@router.get("/clients/{client_id}/items/{item_id}")
def item(request: Request, client_id: Id, item_id: Id) -> Response:
    page = Page(request, client_id)
    detail = page.service.item(page.who, client_id, item_id)
    context = page.service.item_context(page.who, client_id, detail.item)
    names = {c.id: c.description for c in page.service.connections(page.who, client_id)}
    return page.render("item.html", d=detail, c=context, names=names)


@router.post("/clients/{client_id}/items/{item_id}/{action}")
async def act(request: Request, client_id: Id, item_id: Id, action: str) -> Response:
    page = Page(request, client_id)
    await check_csrf(request, page.session)
    form = await request.form()  # read once by Starlette, cached
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}")
    if not page.can_operate:
        # Before the confirmation too: a read-only user is never asked to confirm.
        role = page.client.role if page.client else "none"
        raise Forbidden(f"this needs the operator role; yours is {role}")
    here = page.url(f"/items/{item_id}")
    # Where the operator came from (the lanes page, say) when the form says so: Cancel
    # and the end of the action go back there. A path of this console only.
    back = _back(str(form.get("back", "")), page) if form.get("back") else here
    if form.get("confirmed") != "yes":
        it = page.service.item(page.who, client_id, item_id).item
        # Worded as the bulk confirmation of one item: the same action reads the same
        # from this page and from the queue page's cards.
        described = [f"Item {item_id}: {it.description}"]
        if it.error:
            described.append(f"Error: {error_summary(it.error)}")
        return page.render(
            "confirm_action.html",
            title=f"{action.capitalize()} 1 item?",
            effects=described + EFFECTS[action],
            warnings=_warnings(page, item_id) if action == "skip" else [],
            post_to=page.url(f"/items/{item_id}/{action}"),
            fields={"back": back} if back != here else {},
            button=f"Yes, {action} 1",
            danger=action == "skip",
            back=back,
        )
    page.service.act(page.who, client_id, action, [item_id])
    verb = "retried" if action == "retry" else "skipped"
    # The guard moves the message to a one-time cookie: it never stays in the URL.
    separator = "&" if "?" in back else "?"
    message = urlencode({"msg": f"Item {item_id} {verb}."})
    return RedirectResponse(f"{back}{separator}{message}", 303)


def _warnings(page: Page, item_id: int) -> list[str]:
    """What the catalog knows goes wrong after this skip, with the better way."""
    flt = ItemFilter(page.client_id, ids=(item_id,), statuses=("failed", "queued"))
    lines = []
    for w in page.service.skip_warnings(page.who, flt):
        lines.append(w.message + (f" Better: {w.fix.rstrip('.')}." if w.fix else ""))
    return lines
