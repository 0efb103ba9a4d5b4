"""The connector SDK: what a source, a channel and a fulfillment service can be asked to do.

A connector is a class registered under the `stockyard.connectors` entry point. It is built
from a connection's settings and implements the methods of the roles it plays; a method it
does not implement fails the item with a clear, permanent error. Methods are plain
(blocking) functions: the worker runs them in its thread pool.

Errors: raise `TransientError` (timeouts, refused connections, HTTP 429 / 5xx, rate limits;
optionally with `retry_after`) or `PermanentError` (validation, other 4xx). Anything else
counts as permanent. Every call that changes remote data receives the item's idempotency
key: pass it on (e.g. as an `Idempotency-Key` header) so a repeated item is harmless.

Batched calls (`upsert_variants`) answer one `Result` per element, so one bad SKU does not
fail the others: the flow records what succeeded and fails the item naming the rest.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from stockyard.engine import Limits
from stockyard.errors import HandlerError, PermanentError

S = TypeVar("S", bound=BaseModel)

# Keys of a connection's settings that Stockyard reads itself (docs/flows.md); a connector
# is built from the other keys.
RESERVED_SETTINGS = frozenset(
    {
        "rules",
        "poll_products_every",
        "poll_orders_every",
        "poll_customers_every",
        "poll_fulfillments_every",
        "order_source",
        "fulfillment",
    }
)
# Secrets Stockyard reads itself: `webhook_secret` verifies what the connection pushes in.
RESERVED_SECRETS = frozenset({"webhook_secret"})

# Names of settings (and of HTTP headers) that carry a credential. Settings are stored in
# clear and shown to read-only users, so such values belong in the connection's secrets.
_CREDENTIAL = re.compile(
    r"auth|cookie|token|secret|passw|pwd|api[-_]?key|credential|private[-_]?key|signature",
    re.IGNORECASE,
)
REDACTED = "[redacted]"
ERROR_LIMIT = 1000  # characters of a connector's error kept on an item
_SHORTEST_SECRET = 4  # shorter values would redact ordinary words and say nothing


def looks_like_credential(name: str) -> bool:
    return bool(_CREDENTIAL.search(name))


def secret_values(settings: Mapping[str, Any], names: frozenset[str]) -> list[str]:
    """The values of the secrets among `settings` (strings, or objects of strings), and the
    token part of "Bearer <token>"-like values: what must never appear in an error."""
    found: set[str] = set()
    for name in names & set(settings):
        value = settings[name]
        for text in value.values() if isinstance(value, Mapping) else [value]:
            if isinstance(text, str):
                for part in (text, *text.split()):
                    found.update(_shown_as(part))
    # Longest first, so a value containing another is replaced whole.
    return sorted((v for v in found if len(v) >= _SHORTEST_SECRET), key=len, reverse=True)


def more_secrets(known: list[str], *values: str) -> list[str]:
    """`known` (from secret_values) with `values` a connector derives from its secrets
    (e.g. an HTTP Basic credential, base64 of "key:secret"), in every form shown."""
    found = set(known)
    for value in values:
        found.update(_shown_as(value))
    return sorted((v for v in found if len(v) >= _SHORTEST_SECRET), key=len, reverse=True)


def _shown_as(value: str) -> set[str]:
    """`value` and the escaped forms libraries quote it in (httpx names an illegal header
    by its bytes' repr; JSON bodies and URLs carry it escaped or percent-encoded)."""
    return {
        value,
        repr(value)[1:-1],
        repr(value.encode())[2:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
    }


def redact(text: str, secrets: list[str]) -> str:
    """`text` without any of `secrets`, cut to ERROR_LIMIT characters."""
    for value in secrets:
        text = text.replace(value, REDACTED)
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


def parse_settings(model: type[S], settings: Mapping[str, Any], connector: str) -> S:
    """A connector's settings validated, or a PermanentError naming every bad key."""
    try:
        return model.model_validate(dict(settings))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PermanentError(f"{connector} connector settings: {problems}") from None


class OrderDeclined(PermanentError):
    """The channel holds this order but it is not one to fulfil (a test order, cancelled,
    unpaid, fulfilled by the merchant): its sync_order has nothing to do. Raised by
    `get_order`; the order flow finishes the item with nothing queued instead of failing
    it, since no retry or operator can make such an order one to take."""


@dataclass(frozen=True, slots=True)
class ChannelVariant:
    """A variant as one channel should hold it: its rules already applied."""

    sku: str
    fields: dict[str, Any]  # barcode, price (decimal string), quantity, weight, options
    remote_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelImage:
    code: str
    fields: dict[str, Any]  # url, alt, position
    remote_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelProduct:
    code: str
    fields: dict[str, Any]  # title, description, vendor, type, tags, options, attributes
    variants: list[ChannelVariant]
    images: list[ChannelImage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RemoteProduct:
    """A product as the channel knows it: its id and its variants' and images' ids."""

    id: str
    variants: dict[str, str] = field(default_factory=dict)  # sku -> remote id
    images: dict[str, str] = field(default_factory=dict)  # image code -> remote id


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one element of a batched call."""

    key: str  # the SKU (or code) the element was about
    remote_id: str | None = None
    error: HandlerError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ProductResult(Result):
    """The outcome of one product of `bulk_products`: `remote_id` is the product's id."""

    variants: dict[str, str] = field(default_factory=dict)  # sku -> remote id


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a pull: raw records (validated by the flow) and the cursor to go on."""

    records: list[dict[str, Any]]
    cursor: str | None


# The methods a remote system's answers flow through: their errors are redacted.
ROLE_METHODS = (
    "fetch_products",
    "fetch_images",
    "fetch_customers",
    "create_order",
    "find_product",
    "create_product",
    "update_product",
    "delete_product",
    "upsert_variants",
    "bulk_products",
    "delete_variant",
    "add_image",
    "delete_image",
    "fetch_orders",
    "get_order",
    "push_fulfillment",
    "upsert_customer",
    "create_fulfillment",
    "fetch_fulfillments",
)


# The longest one bulk_products call may take (waits included); the bulk_products
# instruction's item timeout (flows/catalog.py) is BULK_ITEM_TIMEOUT, a margin above it.
BULK_CALL_SECONDS = 600.0
BULK_ITEM_TIMEOUT = 900.0


class Connector:
    """Base class of every connector. `roles` names what it can be: source, channel,
    fulfillment. Override the methods of those roles.

    Errors a role method raises (and the errors of a batch's Results) are kept on items,
    which every member of the client reads: they are bounded, and the values of the
    connection's secrets are replaced by "[redacted]", whatever the remote echoed back."""

    roles: ClassVar[frozenset[str]] = frozenset()
    # Settings that are credentials: refused among the plain settings, so they can only be
    # given as (write-only, encrypted) secrets.
    secret_settings: ClassVar[frozenset[str]] = frozenset()
    # Settings whose names look like credentials but are not (e.g. Vendure's channel token,
    # which its storefront shows to anyone): accepted among the plain settings.
    plain_settings: ClassVar[frozenset[str]] = frozenset()
    # Secrets a connection of this connector cannot be without (checked on every change;
    # `secret_problem(name, None)` says why, else a generic message).
    required_secrets: ClassVar[frozenset[str]] = frozenset()
    # The limits a new connection of this connector starts with, unless its creator gives
    # others (the workers keep them across every machine; an operator may change them):
    # how hard the remote system can be driven. Unlimited unless a connector knows better.
    default_limits: ClassVar[Limits] = Limits()
    # bulk_products: the most products one call (one item) is given. Sized so that a call
    # on a real remote ends within BULK_CALL_SECONDS and bounds what a failure makes redo.
    bulk_chunk: ClassVar[int] = 1000
    # Whether bulk_products replaces each product's variant list (Shopify's productSet):
    # a variant the source dropped is then gone from the channel. Otherwise (create and
    # update only) the flow deletes it by its own delete_product_variant item.
    bulk_replaces_variants: ClassVar[bool] = False
    # Whether a program outside Stockyard runs this connector's calls (the `agent`): the
    # connection's non-blocking items are then claimed only by it (docs/remote-workers.md).
    remote: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings
        self._secret_values = secret_values(settings, type(self).secret_settings)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ROLE_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_redacting", False):
                setattr(cls, name, _redacting(method))

    @classmethod
    def credential_problem(cls, settings: Mapping[str, Any]) -> str | None:
        """What is wrong when plain settings hold a credential (a declared secret, or a
        key that looks like one), naming the setting; None when they hold none."""
        for name in sorted(settings):
            declared = name in cls.secret_settings or name in RESERVED_SECRETS
            looks = looks_like_credential(name) and name not in cls.plain_settings
            if declared or (looks and name not in RESERVED_SETTINGS):
                return f"settings.{name} is a credential: send it in secrets"
        return None

    @classmethod
    def secret_problem(cls, name: str, value: Any) -> str | None:
        """Why this connector refuses a secret as it is given (None: taken; value None:
        a required one missing). Asked only of the secrets set now, so a rule added later
        never locks a connection out of its other changes."""
        return None

    def redact_error(self, error: BaseException) -> None:
        """Bound `error`'s message and take the connection's secrets out of it, in place
        (its type and attributes, e.g. retry_after, stay)."""
        error.args = tuple(
            redact(a, getattr(self, "_secret_values", [])) if isinstance(a, str) else a
            for a in error.args
        )

    def close(self) -> None:
        """Release sockets and the like (called when settings change or on shutdown)."""

    def _unsupported(self, what: str) -> PermanentError:
        return PermanentError(f"the {type(self).__name__} connector cannot {what}")

    # ------------------------------------------------------------------------ as a source

    def fetch_products(self, cursor: str | None) -> Page:
        """Products created or changed since `cursor` (None: all), as Product dicts."""
        raise self._unsupported("pull products")

    def fetch_images(self, product_code: str) -> list[dict[str, Any]]:
        raise self._unsupported("fetch images")

    def fetch_customers(self, cursor: str | None) -> Page:
        """Customers created or changed since `cursor` (None: all), as Customer dicts
        (`code` = the ERP's id of the customer, a trade customer's account number)."""
        raise self._unsupported("pull customers")

    def create_order(self, order: dict[str, Any], key: str) -> str:
        """Create the order in the ERP; return the ERP's code for it. An order whose
        `customer.code` names one of the ERP's customers (a trade account) is that
        customer's sale, not a guest's."""
        raise self._unsupported("create orders")

    # ----------------------------------------------------------------------- as a channel

    def find_product(self, skus: list[str]) -> RemoteProduct | None:
        """The channel's product holding any of these SKUs, to link instead of duplicating."""
        raise self._unsupported("look products up by SKU")

    def create_product(self, product: ChannelProduct, key: str) -> RemoteProduct:
        raise self._unsupported("create products")

    def update_product(self, remote_id: str, product: ChannelProduct, key: str) -> None:
        """Product-level fields only; variants and images have their own calls."""
        raise self._unsupported("update products")

    def delete_product(self, remote_id: str, key: str) -> None:
        """Already gone counts as done."""
        raise self._unsupported("delete products")

    def upsert_variants(
        self, product_remote_id: str, variants: list[ChannelVariant], key: str
    ) -> list[Result]:
        """Create variants without a remote id, update the others; one Result each."""
        raise self._unsupported("write variants")

    def bulk_products(
        self, products: list[ChannelProduct], remote_ids: Mapping[str, str], key: str
    ) -> list[ProductResult]:
        """Optional: write many whole products in one remote job (products the channel
        holds are named by `remote_ids`, code -> remote id; the others are created or
        found by the channel's own key). One ProductResult per product, in order; the
        flows use it for large init/sync runs when a connector overrides it
        (`offers_bulk_products`). A job still running raises TransientError(retry_after)
        and a later call with the same key resumes it instead of starting another. A call
        returns (or raises) within BULK_CALL_SECONDS: the item's timeout leaves a margin
        above it, so a wait the connector bounds is never cut by the watchdog instead."""
        raise self._unsupported("write products in bulk")

    @classmethod
    def offers_bulk_products(cls) -> bool:
        return cls.bulk_products is not Connector.bulk_products

    def delete_variant(self, product_remote_id: str, remote_id: str, key: str) -> None:
        raise self._unsupported("delete variants")

    def add_image(self, product_remote_id: str, image: ChannelImage, key: str) -> str:
        raise self._unsupported("add images")

    def delete_image(self, product_remote_id: str, remote_id: str, key: str) -> None:
        raise self._unsupported("delete images")

    def fetch_orders(self, cursor: str | None) -> Page:
        """Orders placed or changed since `cursor`, as Order dicts."""
        raise self._unsupported("pull orders")

    def get_order(self, remote_id: str) -> dict[str, Any]:
        raise self._unsupported("read orders")

    def push_fulfillment(self, order_remote_id: str, fulfillment: dict[str, Any], key: str) -> None:
        raise self._unsupported("take fulfillment updates")

    def upsert_customer(self, customer: dict[str, Any], remote_id: str | None, key: str) -> str:
        """Create (remote_id None) or update the customer's account (a Customer dict);
        return the channel's id of it. An account is invited, never given a password
        Stockyard knows; it goes in the channel's customer group `customer["group"]` (the
        channel's rules map the customer's price tier to it), so it sees its prices."""
        raise self._unsupported("write customers")

    @classmethod
    def offers_customers(cls) -> bool:
        """Whether customers are pushed to this channel (sync_channel_customer)."""
        return cls.upsert_customer is not Connector.upsert_customer

    # ------------------------------------------------------------ as a fulfillment service

    def create_fulfillment(self, order: dict[str, Any], key: str) -> str:
        """Create the outbound order at the warehouse; return its id there."""
        raise self._unsupported("create fulfillments")

    def fetch_fulfillments(self, cursor: str | None) -> Page:
        """Fulfillments changed since `cursor`, as FulfillmentUpdate dicts ({remote_id,
        state, tracking}); ones Stockyard did not create are ignored."""
        raise self._unsupported("pull fulfillments")


F = TypeVar("F", bound=Callable[..., Any])


def _redacting(method: F) -> F:
    @functools.wraps(method)
    def call(self: Connector, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = method(self, *args, **kwargs)
        except Exception as exc:
            self.redact_error(exc)
            raise
        for result in _results(answer):
            if result.error is not None:
                self.redact_error(result.error)
        return answer

    call._redacting = True  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]


def _results(answer: Any) -> Iterator[Result]:
    if isinstance(answer, list):
        yield from (r for r in answer if isinstance(r, Result))
