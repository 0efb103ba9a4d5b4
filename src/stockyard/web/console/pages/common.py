"""What every console page shares: the templates and their filters, the signed-in `Page`,
and the reading of filters, ids and return paths from URLs and forms."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import ValidationError

from stockyard.accounts import RANK
from stockyard.errors import InvalidInput
from stockyard.service import QueueSummary, Stockyard
from stockyard.service.connections import describe_limits
from stockyard.web.console import guard
from stockyard.web.console.auth import csrf_token, principal
from stockyard.web.deps import service as get_service
from stockyard.web.query import MAX_ID, ItemQuery

HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def utc(ts: float | None) -> str:
    """A time as text, in UTC to the second (CSV, titles: where no script runs)."""
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def when(ts: float | None) -> Markup:
    """A time for a page: a <time> element in UTC, which console.js rewrites in the
    viewer's zone and relative to now ("3 h ago"); without script the UTC text stays."""
    if ts is None:
        return Markup("")
    iso = datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
    return Markup('<time datetime="{}">{}</time>').format(iso, utc(ts))


def number(n: int | float | None) -> str:
    """Thousands separated: "100,150", not "100150"."""
    return "" if n is None else f"{n:,}"


# Characters of an error's one-line summary: room for an exception's advice ("… Set an
# account category … in Tryton and retry."), which usually comes after what went wrong.
SUMMARY_MAX = 300


def error_summary(error: str | None) -> str:
    """An error in one line, the same on every page: a Python traceback's exception (its
    lines after the last frame, joined: a message over several lines keeps what to do),
    else the first line; cut at a word. The full text stays on the page, in a <details>."""
    lines = [line for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0].strip()
    if line.startswith("Traceback"):
        frames = [n for n, text in enumerate(lines) if text.lstrip().startswith('File "')]
        after = lines[frames[-1] + 1 :] if frames else lines[1:]
        # Frames and their source lines are indented; the exception starts at the first
        # line that is not, and runs to the end.
        start = next((n for n, text in enumerate(after) if not text[:1].isspace()), None)
        rest = after[start:] if start is not None else lines[-1:]
        line = " ".join(text.strip() for text in rest)
    return _cut(line, SUMMARY_MAX)


def _cut(text: str, size: int) -> str:
    if len(text) <= size:
        return text
    head = text[: size - 1]
    word = head.rsplit(" ", 1)[0] if " " in head[size // 2 :] else head
    return word.rstrip(" ,;:") + "…"


templates.env.filters["error_summary"] = error_summary
templates.env.filters["when"] = when
templates.env.filters["utc"] = utc
templates.env.filters["num"] = number
templates.env.globals["login_csrf"] = guard.login_token
templates.env.filters["pretty"] = lambda data: json.dumps(data, indent=2, ensure_ascii=False)
templates.env.filters["limits"] = describe_limits
FILTERS = (
    "status",
    "instruction",
    "mode",
    "connection_id",
    "ref",
    "error",
    "created_from",
    "created_to",
)


class Page:
    """What every page of one client needs: the user, the client, the CSRF token."""

    def __init__(self, request: Request, client_id: int | None = None) -> None:
        self.request = request
        self.service: Stockyard = get_service(request)
        self.who, self.session = principal(request, self.service)
        clients = self.service.clients(self.who)
        self.clients = clients
        self.client = next((c for c in clients if c.id == client_id), None)
        if client_id is not None and self.client is None:
            self.service.lanes(self.who, client_id)  # raises NotFound, as the API would

    @property
    def client_id(self) -> int:
        assert self.client is not None
        return self.client.id

    @functools.cached_property
    def summary(self) -> QueueSummary:
        """The per-state counts the layout keeps in view (templates/_summary.html); read
        only when a page shows them."""
        return self.service.queue_summary(self.who, self.client_id)

    @property
    def can_operate(self) -> bool:
        return self.client is not None and RANK[self.client.role] >= RANK["operator"]

    @property
    def can_administer(self) -> bool:
        """Settings and the audit log (its details name members and webhook URLs)."""
        return self.client is not None and RANK[self.client.role] >= RANK["administrator"]

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        response = templates.TemplateResponse(
            self.request,
            template,
            {
                "page": self,
                "csrf": csrf_token(self.session),
                # Only what a redirect of ours left (console.guard): a ?msg= is not shown.
                "message": guard.take_message(self.request, self.session),
                **values,
            },
            status_code=status,
        )
        guard.forget_message(self.request, response)
        return response

    def url(self, path: str, **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
        return f"/console/clients/{self.client_id}{path}" + (f"?{query}" if query else "")


def _query(request: Request) -> tuple[ItemQuery, dict[str, Any]]:
    """The filters of the URL, validated like the API's."""
    params = request.query_params
    raw: dict[str, Any] = {
        "status": [x for x in params.getlist("status") if x],
        "instruction": [i for i in params.getlist("instruction") if i],
    }
    for name in FILTERS[2:]:
        value = params.get(name)
        if value:
            raw[name] = value
    try:
        return ItemQuery.model_validate(raw), raw
    except ValidationError as exc:
        raise InvalidInput(f"These filters do not read: {plain_problems(exc.errors())}") from None


# The filter form's words for its fields (a message says "From", never "created_from").
FIELD_LABELS = {
    "status": "Status",
    "instruction": "Instruction",
    "mode": "Mode",
    "connection_id": "Connection",
    "ref": "Search",
    "ref_prefix": "Search",
    "q": "Search",
    "error": "Error text",
    "created_from": "From",
    "created_to": "To",
}
DATE_FIELDS = frozenset({"created_from", "created_to"})


def plain_problem(field: str, message: str) -> str:
    """One validation problem in the form's words: "From: use a date like 2026-11-28",
    not "created_from: Input should be a valid datetime or date, input is too short"."""
    label = FIELD_LABELS.get(field, field.replace("_", " ").capitalize())
    if field in DATE_FIELDS:
        return f"{label}: use a date like 2026-11-28"
    if "valid integer" in message:
        return f"{label}: use a whole number"
    if message.startswith("Input should be "):
        return f"{label}: use {message.removeprefix('Input should be ')}"
    return f"{label}: {message}"


def plain_problems(errors: Any) -> str:
    """Pydantic's errors (ValidationError.errors()) in the form's words, one line."""
    said = []
    for error in errors:
        names = [part for part in error["loc"] if isinstance(part, str)]
        field = names[-1] if names else ""
        said.append(plain_problem(field, str(error["msg"])))
    return "; ".join(dict.fromkeys(said))


def _is_id(text: str) -> bool:
    # isdigit() alone takes "²" and 5,000-digit strings, which int() then refuses.
    return text.isascii() and text.isdigit() and len(text) <= 16 and 1 <= int(text) <= MAX_ID


def _ids(values: list[Any], field: str) -> list[int]:
    """Ids chosen in a form: whole numbers the database can hold, else a clear 422."""
    out = []
    for value in values:
        text = str(value)
        if not _is_id(text):
            raise InvalidInput(f"{field}: {text[:30]!r} is not an id")
        out.append(int(text))
    return out


def is_console_path(value: str) -> bool:
    """A path (and query) of this console as a browser will resolve it: never another
    site (an open redirect), a `javascript:` link, nor a path that leaves /console/."""
    parts = urlsplit(value)
    # Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    # "/\\evil.example" and "/\t/evil.example" are other hosts to them.
    odd = any(c == "\\" or ord(c) < 0x21 or ord(c) == 0x7F for c in value)
    # A fragment would come before the one-time message a redirect appends ("?msg=").
    if odd or parts.fragment or "#" in value:
        return False
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return False
    # A browser resolves "." and ".." segments, %2e spelled too ("/console/../x" is "/x"),
    # and an empty segment ("//") is how a scheme-relative host starts: none is ours.
    segments = [unquote(s) for s in parts.path.split("/")[1:]]
    inner = segments[:-1]  # the last may be empty: a trailing slash
    return "" not in inner and not {".", ".."} & set(segments)


def _back(value: str, page: Page) -> str:
    """Where the bulk form returns to: a path of this console (is_console_path)."""
    if not value:
        return page.url("/items")
    if not is_console_path(value):
        raise InvalidInput("back: the page to return to must be a path of the console")
    return value
