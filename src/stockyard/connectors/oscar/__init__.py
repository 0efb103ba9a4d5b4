"""The `oscar` connector: a django-oscar trade store (4.2, with django-oscar-api 3.3's admin
API and the store's small `stockyard_trade` app; docs/oscar-notes.md) as a channel.

- Products go out as a parent (UPC = the product's code) with one child per variant
  (UPC = the SKU), linked by UPC through oscar-api's PATCH-by-UPC upsert, so a retry or an
  existing product is updated rather than duplicated.
- Each child gets a stock record per warehouse partner (`partners`: warehouse -> partner
  code; partner SKU = the SKU) with its quantity and the public price, and one per
  customer group in `group_prices` (the channel rule) on the partner named like the group,
  holding only the price: the store's strategy shows a user in Django group <group> that
  partner's price.
- Trade accounts are Oscar users (username = account number) in the Django group
  `groups[customer.group]`, without a password.
- Orders come in through the app's keyset-cursor endpoint, with the account (and its group)
  and what was paid; fulfilments go back as Oscar shipping events, keyed by the fulfilment.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stockyard.connectors.base import (
    ChannelImage,
    ChannelProduct,
    ChannelVariant,
    Connector,
    Page,
    RemoteProduct,
    Result,
    parse_settings,
)
from stockyard.connectors.oscar.client import OscarClient, OscarNotFound, OscarTooLarge
from stockyard.connectors.urls import secret_bearing_url
from stockyard.engine import Limits
from stockyard.errors import HandlerError, PermanentError

DEFAULT_PARTNER = "main"
ORDERS_PER_PULL = 100
PRODUCTS = "/api/admin/products/"
USERS = "/api/admin/users/"
# Django's User.username max_length: an account number is the username, whole.
USERNAME_MAX = 150
ORDERS = "/stockyard/orders/"


class OscarSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str  # the store's root, e.g. https://trade.example.com (the API is under /api/)
    token: str = Field(min_length=1, repr=False)  # a staff user's DRF token
    # Warehouse -> Oscar partner code; empty: all stock on partner "main".
    partners: dict[str, str] = {}
    product_class: str = Field(default="apparel", min_length=1)  # its slug
    option_attribute: str = Field(default="size", min_length=1)  # the child's attribute
    # Customer group (the group_prices rule's group = the price-list partner's code) ->
    # Oscar's (Django's) id of that group: where accounts are put, and which of a buyer's
    # groups make an order a trade customer's.
    groups: dict[str, int] = {}
    timeout: float = Field(default=30.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        # The token travels with every request: only over TLS, except to this machine
        # (the tests' store).
        why = "must be https:// (http:// only to this machine, for tests)"
        return secret_bearing_url(url, why).rstrip("/")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:200] or "product"


def _parent_upc(product: ChannelProduct) -> str:
    """The parent's UPC: the product's code, unless that is one of its SKUs (a product
    without a code of its own is named by its first SKU), since UPCs are unique in Oscar
    and the SKU is the child's. The UPC finds the parent again on a retry."""
    if any(v.sku == product.code for v in product.variants):
        return f"{product.code}/product"
    return product.code


def _id(url_or_id: Any) -> str:
    """Oscar names related products by admin URL (…/products/<id>/) or by id."""
    return str(url_or_id).rstrip("/").rsplit("/", 1)[-1]


class OscarConnector(Connector):
    roles = frozenset({"channel"})
    secret_settings = frozenset({"token"})
    # runserver and SQLite in the tests, a Django site in production: a sync must leave it
    # room for its shoppers.
    default_limits = Limits(max_running=4)

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(OscarSettings, settings, "oscar")
        self.api = OscarClient(self.config.url, self.config.token, self.config.timeout)
        self._partners: dict[str, str] | None = None  # code -> admin URL

    def close(self) -> None:
        self.api.close()

    # -------------------------------------------------------------------- partners

    def _partner(self, code: str, why: str) -> str:
        """The admin URL of partner `code` (read once; again when one is missing, since an
        operator may have just made it)."""
        if self._partners is None or code not in self._partners:
            rows = self.api.call("GET", "/api/admin/partners/") or []
            self._partners = {str(p["code"]): str(p["url"]) for p in rows}
        if code not in self._partners:
            raise PermanentError(f"oscar has no partner {code!r} ({why}): create it in Oscar")
        return self._partners[code]

    def _warehouse_partners(self) -> list[str]:
        return list(dict.fromkeys(self.config.partners.values())) or [DEFAULT_PARTNER]

    # --------------------------------------------------------------------- products

    def find_product(self, skus: list[str]) -> RemoteProduct | None:
        """oscar-api's product list has no filter; its PATCH by UPC finds one product by a
        unique field, so a PATCH carrying only the UPC (no change) is the lookup."""
        for sku in skus:
            try:
                found = self.api.call("PATCH", PRODUCTS, {"upc": sku})
            except OscarNotFound:
                continue
            parent = found.get("parent")
            return self._remote(str(parent) if parent else str(found["id"]))
        return None

    def _remote(self, product_id: str) -> RemoteProduct:
        product = self.api.call("GET", f"{PRODUCTS}{product_id}/")
        variants = {}
        for child in product.get("children") or []:
            row = self.api.call("GET", f"{PRODUCTS}{_id(child)}/")
            if row.get("upc"):
                variants[str(row["upc"])] = str(row["id"])
        if product.get("structure") == "standalone" and product.get("upc"):
            variants[str(product["upc"])] = str(product["id"])
        images = {str(i["id"]): str(i["id"]) for i in product.get("images") or []}
        return RemoteProduct(str(product["id"]), variants, images)

    def _product_body(self, product: ChannelProduct) -> dict[str, Any]:
        fields = product.fields
        return {
            "title": str(fields.get("title") or product.code)[:255],
            "description": str(fields.get("description") or ""),
        }

    def create_product(self, product: ChannelProduct, key: str) -> RemoteProduct:
        """The parent, made or (an earlier attempt's, or one made in Oscar by hand under
        this code) updated, then its children."""
        upc = _parent_upc(product)
        body = {"upc": upc, **self._product_body(product)}
        try:
            # The lookup first (a PATCH with only the UPC changes nothing): the UPC may be
            # another product's variant SKU or a standalone product, never to be written
            # over with this product's title and description.
            known = self.api.call("PATCH", PRODUCTS, {"upc": upc})
            if known.get("structure") != "parent":
                raise PermanentError(
                    f"oscar: UPC {upc!r} is product {known.get('id')}, a"
                    f" {known.get('structure')} product, not a parent: product {product.code}"
                    " cannot be made under it (another product's variant has that SKU)"
                )
            parent = self.api.call("PATCH", PRODUCTS, body)
        except OscarNotFound:
            parent = self.api.call(
                "POST",
                PRODUCTS,
                {
                    **body,
                    "slug": _slug(product.code),
                    "structure": "parent",
                    "product_class": self.config.product_class,
                },
            )
        parent_id = str(parent["id"])
        results = self.upsert_variants(parent_id, product.variants, key)
        failed = [r for r in results if not r.ok]
        if failed:
            raise failed[0].error or PermanentError("oscar: a variant failed")
        images = {i.code: self.add_image(parent_id, i, key) for i in product.images}
        return RemoteProduct(parent_id, {r.key: r.remote_id or "" for r in results}, images)

    def update_product(self, remote_id: str, product: ChannelProduct, key: str) -> None:
        self.api.call("PATCH", f"{PRODUCTS}{remote_id}/", self._product_body(product))

    def delete_product(self, remote_id: str, key: str) -> None:
        """Oscar deletes a parent's children with it (a foreign key on cascade)."""
        self._delete(f"{PRODUCTS}{remote_id}/")

    def _delete(self, path: str) -> None:
        with contextlib.suppress(OscarNotFound):  # already gone: done
            self.api.call("DELETE", path)

    def upsert_variants(
        self, product_remote_id: str, variants: list[ChannelVariant], key: str
    ) -> list[Result]:
        """Each variant a child, made or updated by UPC; one Result each."""
        results: list[Result] = []
        for variant in variants:
            try:
                results.append(
                    Result(variant.sku, remote_id=self._child(product_remote_id, variant))
                )
            except HandlerError as exc:
                results.append(Result(variant.sku, error=exc))
        return results

    def _child(self, parent_id: str, variant: ChannelVariant) -> str:
        records = self._stock_records(variant)
        body: dict[str, Any] = {
            "upc": variant.sku,
            "title": self._variant_title(variant),
            "stockrecords": records,
        }
        value = self._option_value(variant)
        if value:
            body["attributes"] = [{"code": self.config.option_attribute, "value": value}]
        exists = True
        if variant.remote_id is None:
            # Not linked yet: a SKU Oscar already holds must be this product's variant,
            # never one taken over from another product (a PATCH with only the UPC is the
            # lookup: it changes nothing).
            try:
                known = self.api.call("PATCH", PRODUCTS, {"upc": variant.sku})
            except OscarNotFound:
                known, exists = None, False
            if known is not None and str(known.get("parent")) != str(parent_id):
                raise PermanentError(
                    f"oscar: SKU {variant.sku} is product {known['id']}, not a variant of"
                    f" product {parent_id}: a variant of another product"
                    f" ({known.get('parent')})"
                )
        # Oscar resolves a child's attributes through its parent, which the body names.
        body.update(parent=int(parent_id), product_class=None)
        child = None
        if exists:
            with contextlib.suppress(OscarNotFound):  # deleted in Oscar: made again
                child = self.api.call("PATCH", PRODUCTS, body)
        if child is None:
            new = {**body, "slug": _slug(variant.sku), "structure": "child"}
            child = self.api.call("POST", PRODUCTS, new)
        # PATCH merges nested lists: a partner no longer wanted (a tier dropped, a
        # warehouse unmapped) keeps its old record unless it is removed here.
        wanted = {_id(r["partner"]) for r in records}
        for row in child.get("stockrecords") or []:
            if _id(row["partner"]) not in wanted:
                self._delete(f"/api/admin/stockrecords/{_id(row.get('url') or row['id'])}/")
        return str(child["id"])

    def _variant_title(self, variant: ChannelVariant) -> str:
        values = " ".join(str(v) for v in (variant.fields.get("options") or {}).values())
        return (values or variant.sku)[:255]

    def _option_value(self, variant: ChannelVariant) -> str:
        """The value of the option named like `option_attribute` ("Size" for "size"), else
        all option values together, so variants stay told apart."""
        options = {str(k): str(v) for k, v in (variant.fields.get("options") or {}).items()}
        wanted = self.config.option_attribute.lower()
        for name, value in options.items():
            if name.lower() == wanted:
                return value
        return " / ".join(options.values())

    def _stock_records(self, variant: ChannelVariant) -> list[dict[str, Any]]:
        fields = variant.fields
        price = str(Decimal(str(fields.get("price", 0))))
        stock = fields.get("stock")
        mapping = self.config.partners
        quantities: dict[str, int] = {}
        if mapping and isinstance(stock, Mapping):
            quantities = dict.fromkeys(self._warehouse_partners(), 0)
            for warehouse, quantity in stock.items():
                code = mapping.get(str(warehouse))
                if code is not None:  # a warehouse this store does not sell from: left out
                    quantities[code] += max(int(quantity), 0)
        else:
            # No stock per warehouse (or no mapping): everything on the first partner.
            total = fields.get("quantity")
            partners = self._warehouse_partners()
            quantities = dict.fromkeys(partners, 0)
            quantities[partners[0]] = max(int(total or 0), 0)
        records = [
            {
                "partner": self._partner(code, "a warehouse in settings.partners"),
                "partner_sku": variant.sku,
                "price": price,
                "num_in_stock": quantity,
            }
            for code, quantity in quantities.items()
        ]
        for group, group_price in sorted((fields.get("group_prices") or {}).items()):
            if group_price is None:
                continue  # no price in that tier: the group pays the public price
            records.append(
                {
                    "partner": self._partner(str(group), f"the price list of group {group}"),
                    "partner_sku": variant.sku,
                    "price": str(Decimal(str(group_price))),
                }
            )
        return records

    def delete_variant(self, product_remote_id: str, remote_id: str, key: str) -> None:
        self._delete(f"{PRODUCTS}{remote_id}/")

    # ------------------------------------------------------------------------ images

    def add_image(self, product_remote_id: str, image: ChannelImage, key: str) -> str:
        """Oscar downloads the URL itself; an image whose content it already holds for the
        product is matched (by hash) rather than added twice, so a retry is harmless."""
        path = f"{PRODUCTS}{product_remote_id}/"
        before = {i["id"] for i in (self.api.call("GET", path).get("images") or [])}
        fields = image.fields
        entry = {
            "original": str(fields.get("url") or image.code),
            "caption": str(fields.get("alt") or "")[:200],
            "display_order": int(fields.get("position") or 0),
        }
        after = self.api.call("PATCH", path, {"images": [entry]}).get("images") or []
        new = [i for i in after if i["id"] not in before]
        if new:
            return str(new[0]["id"])
        same = [i for i in after if i.get("display_order") == entry["display_order"]]
        if not (same or after):
            raise PermanentError(f"oscar kept no image from {entry['original']}")
        return str((same or after)[0]["id"])

    def delete_image(self, product_remote_id: str, remote_id: str, key: str) -> None:
        """oscar-api has no image endpoint and a PATCH only adds: a PUT of the parent with
        its children and every other image (named by their own media URLs, which Oscar
        matches to the files it holds) replaces its images. A parent has no stock records
        or attribute values of ours, so nothing else is lost."""
        path = f"{PRODUCTS}{product_remote_id}/"
        try:
            product = self.api.call("GET", path)
        except OscarNotFound:
            return
        images = product.get("images") or []
        if not any(str(i["id"]) == str(remote_id) for i in images):
            return  # already gone
        keep = [
            {
                "original": i["original"],
                "caption": i["caption"],
                "display_order": i["display_order"],
            }
            for i in images
            if str(i["id"]) != str(remote_id)
        ]
        body = {
            name: product[name]
            for name in ("upc", "slug", "title", "description", "structure", "product_class")
        }
        body.update(
            children=product.get("children") or [],
            attributes=product.get("attributes") or [],
            stockrecords=product.get("stockrecords") or [],
            images=keep,
        )
        self.api.call("PUT", path, body)

    # ------------------------------------------------------------------------ orders

    def fetch_orders(self, cursor: str | None) -> Page:
        """Orders changed since `cursor` (the app's keyset: placed, status changed or
        paid), oldest first; the cursor is the app's own `next`."""
        params: dict[str, Any] = {"limit": ORDERS_PER_PULL}
        if cursor:
            try:
                position = json.loads(cursor)
                params.update(since=position["since"], after_id=int(position["after_id"]))
            except (ValueError, KeyError, TypeError):
                raise PermanentError(f"oscar: unreadable orders cursor {cursor[:80]!r}") from None
        answer = self.api.call("GET", ORDERS, params=params)
        following = answer["next"]
        next_cursor = json.dumps(following) if following.get("since") else cursor
        return Page([self._order(o) for o in answer["orders"]], next_cursor)

    def get_order(self, remote_id: str) -> dict[str, Any]:
        answer = self.api.call("GET", ORDERS, params={"number": remote_id})
        orders = answer["orders"]
        if not orders:
            raise PermanentError(f"oscar has no order {remote_id}")
        return self._order(orders[0])

    def _order(self, order: dict[str, Any]) -> dict[str, Any]:
        total = Decimal(order["total_incl_tax"])
        record: dict[str, Any] = {
            # The number: what Oscar and the app's shipping events name an order by.
            "remote_id": str(order["number"]),
            "number": str(order["number"]),
            "currency": order.get("currency") or "USD",
            "customer": self._customer(order),
            "lines": [
                {
                    "sku": line["partner_sku"],
                    "quantity": line["quantity"],
                    "price": line["unit_price_excl_tax"],
                    "title": line.get("title") or "",
                }
                for line in order["lines"]
            ],
            "shipping_address": _address(order.get("shipping_address")),
            "billing_address": _address(order.get("billing_address")),
            "shipping": order.get("shipping_incl_tax") or "0",
            "tax": str(total - Decimal(order["total_excl_tax"])),
            "total": str(total),
        }
        if order.get("paid") is not None:
            record["paid"] = order["paid"]
        return record

    def _customer(self, order: dict[str, Any]) -> dict[str, Any] | None:
        """A user in a group of `groups` is a trade customer: their username is the account
        number (the ERP's code of the customer) and `group` that group (the first by name,
        as the store's strategy prices them). Anyone else is known by email."""
        user = order.get("customer")
        email = (user or {}).get("email") or order.get("email") or None
        if not user:
            return {"code": email, "email": email} if email else None
        trade = sorted(set(user.get("groups") or []) & set(self.config.groups))
        name = " ".join(x for x in (user.get("first_name"), user.get("last_name")) if x)
        if trade:
            return {"code": user["username"], "email": email, "name": name, "group": trade[0]}
        return {"code": email or f"oscar-user-{user['id']}", "email": email, "name": name}

    def push_fulfillment(self, order_remote_id: str, fulfillment: dict[str, Any], key: str) -> None:
        """A shipped fulfilment becomes an Oscar shipping event of every line, keyed by the
        fulfilment so that it is made once however often it is pushed."""
        if fulfillment.get("state") != "complete":
            return  # Oscar records shipments; pending, open and cancelled are not one
        tracking = fulfillment.get("tracking") or {}
        self.api.call(
            "POST",
            f"{ORDERS}{order_remote_id}/shipping-events/",
            {
                "key": f"stockyard-fulfillment-{fulfillment.get('id') or key}"[:128],
                "event_type": "Shipped",
                "carrier": tracking.get("carrier") or "",
                "tracking_number": tracking.get("number") or "",
            },
        )

    # --------------------------------------------------------------------- customers

    def upsert_customer(self, customer: dict[str, Any], remote_id: str | None, key: str) -> str:
        """The trade account: username = account number, in the Django group of its
        customer group (the flows set `group` from the channel's group_prices rule; None:
        no group, the public prices). Never a password: the customer sets one through
        Oscar's own reset mail."""
        code = str(customer.get("code") or "")
        if not code:
            raise PermanentError("oscar: a customer without a code (account number)")
        if len(code) > USERNAME_MAX:
            # Not cut: a cut username would be another account's (or link a user whose
            # name only starts like this one), and the look-up by username would miss it.
            raise PermanentError(
                f"oscar: account number {code[:40]!r}... is {len(code)} characters; an Oscar"
                f" username holds at most {USERNAME_MAX}: shorten the customer's code in the"
                " source"
            )
        group = customer.get("group")
        groups: list[int] = []
        if group:
            if group not in self.config.groups:
                raise PermanentError(
                    f"oscar: customer {code}'s group {group!r} has no Oscar group id in"
                    " settings.groups (group name -> id)"
                )
            groups = [self.config.groups[group]]
        first, _, last = str(customer.get("name") or "").partition(" ")
        body = {
            "username": code,
            "email": customer.get("email") or "",
            "first_name": first[:150],
            "last_name": last[:150],
            "groups": groups,
            "is_active": bool(customer.get("active", True)),
        }
        if remote_id:
            try:
                return str(self.api.call("PATCH", f"{USERS}{remote_id}/", body)["id"])
            except OscarNotFound:
                pass  # deleted in Oscar: made again below
        try:
            return str(self.api.call("POST", USERS, body)["id"])
        except PermanentError as exc:
            if "username" not in str(exc):
                raise  # refused for another reason than the username being taken
            known = self._user_by_username(code)
            if known is None:
                raise exc from None
            # Made before (a retry whose answer was lost) or opened in Oscar for this
            # account: link and update it, if it is one Stockyard may have made.
            self._may_take_over(known, code)
            return str(self.api.call("PATCH", f"{USERS}{known['id']}/", body)["id"])

    def _may_take_over(self, user: dict[str, Any], code: str) -> None:
        """Refuse an existing user Stockyard could not have made: setting a customer's
        e-mail on a staff user (or a shopper's own account) would hand it over through
        Oscar's password-reset mail. Stockyard's accounts are never staff or superusers,
        and are in one of this connector's groups, or in none and without a password
        that signs in (a customer at public prices whose first attempt's answer was
        lost: oscar-api leaves the empty password, which Django's has_usable_password()
        calls usable, hence the store's own `has_password`). A store that does not show
        these fields gets no takeover at all."""
        flags = ("is_staff", "is_superuser", "groups", "has_password")
        missing = [f for f in flags if f not in user]
        name = f"oscar: user {str(user.get('username'))!r} (id {user.get('id')})"
        if missing:
            raise PermanentError(
                f"{name} already holds account {code}'s username, and the store's admin"
                f" users API does not show {', '.join(missing)}: show them read-only"
                " (an admin user serializer in OSCARAPI_OVERRIDE_MODULES, as docs/connectors.md's"
                " Oscar page describes; never as OSCARAPI_ADMIN_USER_FIELDS, which makes them"
                " writable), or remove or rename that user"
            )
        if user["is_staff"] or user["is_superuser"]:
            role = "a superuser" if user["is_superuser"] else "staff"
            raise PermanentError(
                f"{name} is {role}: Stockyard never makes account {code} from it; rename"
                " one of them in Oscar"
            )
        ours = set(self.config.groups.values())
        groups = set(user["groups"] or [])
        if (groups and not groups & ours) or (not groups and user["has_password"]):
            raise PermanentError(
                f"{name} is not in the groups of settings.groups ({sorted(groups)}) and"
                " not one Stockyard made: a shopper's own account is never taken over for"
                f" account {code}; rename one of them in Oscar"
            )

    def _user_by_username(self, username: str) -> dict[str, Any] | None:
        """The user named `username`. oscar-api's users list has no filter and no pages:
        the whole list is read, within the client's answer cap (16 MiB, some 50,000
        users); a store with more cannot be searched this way and the account is refused,
        to be linked by hand."""
        try:
            users = self.api.call("GET", USERS) or []
        except OscarTooLarge:
            raise PermanentError(
                f"oscar: the store has too many users to find {username!r} in its users list"
                f" (more than {self.api.max_answer} bytes): link account {username!r} by"
                " hand (give the existing user another username, or remove it)"
            ) from None
        return next((dict(u) for u in users if u.get("username") == username), None)


def _address(address: dict[str, Any] | None) -> dict[str, str] | None:
    if not address:
        return None
    name = " ".join(x for x in (address.get("first_name"), address.get("last_name")) if x)
    return {
        "name": name,
        "line1": address.get("line1") or "",
        "line2": " ".join(x for x in (address.get("line2"), address.get("line3")) if x),
        "city": address.get("line4") or "",
        "region": address.get("state") or "",
        "postcode": address.get("postcode") or "",
        "country": address.get("country") or "",
        "phone": address.get("phone_number") or "",
    }
