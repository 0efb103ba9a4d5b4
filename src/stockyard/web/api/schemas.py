"""What the API reads and writes: its OpenAPI document is generated from these models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stockyard.catalog.models import Customer, FulfillmentUpdate, Image, Order, Product, Tracking
from stockyard.engine import Limits
from stockyard.web.query import ItemId, ItemQuery, Mode, Name, Status

Role = Literal["read-only", "operator", "administrator"]
Kind = Literal["source", "channel", "fulfillment"]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Answers are read off the service's objects; epoch-second times become UTC datetimes."""

    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


class FieldError(BaseModel):
    field: str
    message: str


# --------------------------------------------------------------------------------- items


class ItemOut(Out):
    id: int
    instruction: str
    mode: Mode
    status: Status
    connection_id: int | None
    lane_id: int | None
    description: str
    payload: dict[str, Any]
    refs: list[str]
    parent_id: int | None
    idempotency_key: str | None
    coalesce_key: str | None
    superseded_by: int | None
    attempts: int
    failures: int
    error: str | None
    error_kind: str | None
    worker_id: str | None
    created_at: datetime
    updated_at: datetime
    run_after: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page")


class AttemptOut(Out):
    number: int
    worker_id: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    error: str | None


class AuditOut(Out):
    at: datetime
    actor: str
    action: str
    item_id: int | None
    lane_id: int | None
    detail: dict[str, Any]


class AuditEntryOut(AuditOut):
    id: int


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: str | None


class ItemDetailOut(BaseModel):
    item: ItemOut
    attempts: list[AttemptOut]
    children: list[ItemOut]
    audit: list[AuditOut]


def _fresh(factory: Callable[[], Any]) -> Any:
    """An empty default made new for each value, documented as the literal it equals:
    pydantic deep-copies a literal `[]` or `{}` default for every model it builds, which
    was half of validating a batch of items."""
    return Field(default_factory=factory, json_schema_extra={"default": factory()})


class NewItem(In):
    instruction: Name
    payload: dict[str, Any] = _fresh(dict)
    connection_id: ItemId | None = None
    refs: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=50)
    ] = _fresh(list)
    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    delay: Annotated[float, Field(ge=0, le=365 * 86400)] = 0.0


class Enqueue(In):
    items: Annotated[list[NewItem], Field(min_length=1, max_length=1000)]


class Enqueued(BaseModel):
    ids: list[int]


class Bulk(In):
    ids: Annotated[list[ItemId], Field(max_length=1000)] | None = None
    filter: ItemQuery | None = None

    @model_validator(mode="after")
    def _one(self) -> Bulk:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        return self


class Affected(BaseModel):
    affected: int
    ids: list[int]


# --------------------------------------------------------------------------------- lanes


class LaneOut(Out):
    lane_id: int
    kind: str
    description: str
    state: Literal["idle", "ready", "waiting", "running", "blocked", "paused"]
    paused: bool
    pending: int
    waiting: int
    head_id: int | None
    head_instruction: str | None
    head_status: str | None
    head_error: str | None
    oldest_created_at: datetime | None
    next_run_at: datetime | None


class Pause(In):
    reason: Annotated[str, Field(max_length=500)] = ""


# --------------------------------------------------------------------------- connections

Secrets = dict[str, Annotated[str, Field(min_length=1)] | dict[str, str] | None]

_MAX_RUNNING = "items of the connection running at once, on every worker together"
_PER_SECOND = "items started per second on average, on every worker together"
_BURST = "items that may start at once within the rate (default 1: evenly spaced)"
# Strict: "5" or true is a mistake to report, not a number to guess.
_Count = Annotated[int, Field(strict=True, ge=1)]
_Rate = Annotated[float, Field(strict=True, gt=0)]


class LimitsOut(Out):
    """How hard the workers drive the connection's remote system; null: no such limit."""

    max_running: int | None = Field(description=_MAX_RUNNING)
    per_second: float | None = Field(description=_PER_SECOND)
    burst: int | None = Field(description=_BURST)


class LimitsIn(In):
    """The connection's limits, replaced whole: a field left out or null is no such limit.
    Items beyond them wait their turn; they never fail for it."""

    max_running: _Count | None = Field(default=None, description=_MAX_RUNNING)
    per_second: _Rate | None = Field(default=None, description=_PER_SECOND)
    burst: _Count | None = Field(default=None, description=_BURST + "; needs per_second")

    def limits(self) -> Limits:
        """The engine's Limits, which refuse what is out of range (InvalidInput, a 422
        naming the field), so the bounds have one home."""
        return Limits(self.max_running, self.per_second, self.burst)


class ConnectionOut(Out):
    id: int
    kind: Kind
    connector: str
    description: str
    settings: dict[str, Any]
    status: str
    secrets: list[str] = Field(description="names of the secrets set; values are never returned")
    limits: LimitsOut = Field(description="how hard the workers may drive it; null fields: none")


class NewConnection(In):
    kind: Kind
    connector: Name
    description: Name
    settings: dict[str, Any] = {}
    secrets: Secrets = Field(default={}, description="write-only; stored encrypted")
    limits: LimitsIn | None = Field(
        default=None, description="left out: the connector's default limits"
    )


class ConnectionChange(In):
    description: Name | None = None
    settings: dict[str, Any] | None = Field(default=None, description="replaces all settings")
    secrets: Secrets | None = Field(default=None, description="merged; null removes a secret")


# ------------------------------------------------------------------------------- catalog


class ProductRowOut(Out):
    id: int
    code: str
    title: str
    deleted: bool
    updated_at: datetime


class ProductPage(BaseModel):
    products: list[ProductRowOut]
    next_cursor: str | None


class VariantOut(BaseModel):
    id: int
    sku: str
    product_id: int
    product_code: str
    deleted: bool
    data: dict[str, Any]


class VariantPage(BaseModel):
    variants: list[VariantOut]
    next_cursor: str | None


class ProductOut(BaseModel):
    id: int
    code: str
    deleted: bool
    fields: dict[str, Any]
    variants: list[dict[str, Any]]
    images: list[dict[str, Any]]


class FulfillmentOut(Out):
    id: int
    order_id: int
    service_id: int
    remote_id: str | None
    state: str
    tracking: Tracking | None


class OrderOut(BaseModel):
    id: int
    channel_id: int
    state: str
    paid: str | None
    source_code: str | None
    order: dict[str, Any]


class OrderPage(BaseModel):
    orders: list[OrderOut]
    next_cursor: str | None


class OrderDetailOut(OrderOut):
    fulfillments: list[FulfillmentOut]


class FulfillmentPage(BaseModel):
    fulfillments: list[FulfillmentOut]
    next_cursor: str | None


# ------------------------------------------------------------------------------- inbound


class ProductsPush(In):
    products: Annotated[list[Product], Field(min_length=1, max_length=1000)]


class ImagePushIn(In):
    product: Name
    image: Image


class ImagesPush(In):
    images: Annotated[list[ImagePushIn], Field(min_length=1, max_length=1000)]


class CustomersPush(In):
    customers: Annotated[list[Customer], Field(min_length=1, max_length=1000)]


class OrdersPush(In):
    """Whole orders, or only the channel's ids of orders to fetch."""

    orders: Annotated[list[Order], Field(max_length=1000)] = []
    remote_ids: Annotated[list[Name], Field(max_length=1000)] = []

    @model_validator(mode="after")
    def _some(self) -> OrdersPush:
        if not self.orders and not self.remote_ids:
            raise ValueError("give orders or remote_ids")
        return self


class FulfillmentsPush(In):
    fulfillments: Annotated[list[FulfillmentUpdate], Field(min_length=1, max_length=1000)]


class Accepted(BaseModel):
    items: list[int] = Field(description="the queue items created (or found, for a repeat)")


# ------------------------------------------------------------------------------ accounts


class Login(In):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1000)]


class Session(BaseModel):
    token: str
    expires_in: int


class ClientOut(Out):
    id: int
    name: str
    role: Role


class Me(BaseModel):
    actor: str
    platform_admin: bool
    clients: list[ClientOut]


class NewClient(In):
    name: Name


class KeyOut(Out):
    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class NewKey(In):
    name: Name
    role: Role = "operator"


class CreatedKey(KeyOut):
    token: str = Field(description="shown this once; store it now")


class MemberOut(Out):
    user_id: int
    email: str
    role: Role


class SetMember(In):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    role: Role
    password: Annotated[str, Field(min_length=8, max_length=1000)] | None = Field(
        default=None,
        description="platform administrators only, and only for an email without an account"
        " (its first password); a client administrator's member gets none",
    )


class NewUser(In):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=8, max_length=1000)]
    platform_admin: bool = False


class UserOut(Out):
    id: int
    email: str
    platform_admin: bool


Problem.model_rebuild()


# ------------------------------------------------------------------------- notifications

Event = Literal["lane.stopped", "lane.resumed", "item.failed", "daily.summary"]


class SubscriptionOut(Out):
    id: int
    kind: Literal["email", "webhook"]
    target: str
    events: list[Event] = Field(description="empty: every event")
    connections: list[int] = Field(description="empty: every connection")
    created_at: datetime


class CreatedSubscription(SubscriptionOut):
    secret: str | None = Field(description="a webhook's signing secret, shown this once")


class NewSubscription(In):
    kind: Literal["email", "webhook"]
    target: Annotated[str, Field(min_length=3, max_length=2000, description="address or URL")]
    events: Annotated[list[Event], Field(max_length=10)] = []
    connections: Annotated[list[ItemId], Field(max_length=100)] = []


# ---------------------------------------------------------------------------------- agent
# The remote-worker protocol of `stockyard agent` (docs/remote-workers.md): every request
# is a POST signed with the agent connection's webhook_secret (Standard Webhooks).

AgentSession = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the agent's session: a new one after a restart or a 409",
    ),
]


class AgentHello(In):
    """Nothing: the signature is what is checked."""


class AgentHelloOut(BaseModel):
    connection: int
    description: str


class AgentClaim(In):
    session: AgentSession
    limit: Annotated[int, Field(ge=1, le=50, description="items at most")] = 10
    wait: Annotated[
        float, Field(ge=0, le=25, description="seconds to wait for work (long poll)")
    ] = 0.0
    holding: Annotated[
        list[ItemId],
        Field(
            max_length=1000,
            description=(
                "items of this session the agent is still working on: not handed back"
                " (every other item the session holds is, first)"
            ),
        ),
    ] = []


class AgentWork(Out):
    id: int
    attempt: int = Field(description="send it back with the outcome (the fence)")
    instruction: str
    call: str = Field(description="what to run, e.g. create_order")
    args: dict[str, Any] = Field(description="its arguments, e.g. {order, key}")


class AgentClaimed(Out):
    items: list[AgentWork]
    lease_seconds: float = Field(
        description="items are released after this long without a claim or heartbeat"
    )


class AgentHeartbeat(In):
    session: AgentSession


class AgentAlive(BaseModel):
    alive: bool = True


class AgentDone(In):
    id: Annotated[int, Field(ge=1)]
    attempt: Annotated[int, Field(ge=1)]
    outcome: Literal["done"]
    result: str = Field(
        description=(
            "the call's answer, e.g. the ERP code: 1 to 255 characters of text (another"
            " fails that item for good, naming the problem)"
        )
    )


class AgentFailed(In):
    id: Annotated[int, Field(ge=1)]
    attempt: Annotated[int, Field(ge=1)]
    outcome: Literal["transient", "permanent"]
    error: str = Field(description="what went wrong; kept cut to the item's error size")
    retry_after: Annotated[float | None, Field(ge=0, le=86_400)] = None


class AgentSettle(In):
    session: AgentSession
    outcomes: Annotated[
        list[Annotated[AgentDone | AgentFailed, Field(discriminator="outcome")]],
        Field(min_length=1, max_length=50),
    ]


class AgentSettled(Out):
    settled: list[int] = Field(description="recorded")
    refused: list[int] = Field(description="not this session's any more: drop them")
