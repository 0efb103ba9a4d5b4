"""What oscar-api lacks for an integration, as two endpoints for staff users (DRF token):

GET  /stockyard/orders/?since=<iso datetime>&after_id=<order id>&limit=<n>
GET  /stockyard/orders/?number=<order number>   (that one order, in the same shape)
     Orders changed after the cursor, oldest first. "Changed" is the order's last status
     change, or its placing when it has none. Keyset paging on (changed, id): pass back the
     answer's `next` as the next call's query. Each order carries what a connector needs to
     make a sale of it: lines with partner SKU, quantities and prices (incl. and excl. tax),
     the customer's account (username), email and groups, the addresses, the shipping
     events so far, and `paid`: the sum of the order's "Paid" payment events (null when
     none). A payment event moves the order's "changed" too, so a payment recorded later
     (manage.py record_payment) shows in the next pull.
POST /stockyard/orders/<number>/shipping-events/
     {"key": "...", "event_type": "Shipped", "carrier": "...", "tracking_number": "...",
      "lines": [{"partner_sku": "...", "quantity": 1}]}   (no "lines": every line, in full)
     Creates Oscar's own ShippingEvent through Oscar's EventHandler (which refuses more than
     a line's quantity), carrier and tracking in its notes. The same key again answers the
     event it made (200) instead of a second one (201).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from oscar.apps.order.exceptions import InvalidShippingEvent
from oscar.core.loading import get_class, get_model
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from stockyard_trade.models import ShippingEventKey

Order = get_model("order", "Order")
OrderStatusChange = get_model("order", "OrderStatusChange")
PaymentEvent = get_model("order", "PaymentEvent")
ShippingEventType = get_model("order", "ShippingEventType")
EventHandler = get_class("order.processing", "EventHandler")

PAGE = 50
PAID = "Paid"  # the payment event type whose amounts count as paid (record_payment makes it)
MAX_PAGE = 200


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _when(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _address(address: Any) -> dict[str, Any] | None:
    if address is None:
        return None
    fields = ("title", "first_name", "last_name", "line1", "line2", "line3", "line4")
    return {
        **{name: getattr(address, name) for name in fields},
        "state": address.state,
        "postcode": address.postcode,
        "country": address.country_id,
        "phone_number": str(address.phone_number or ""),
        "notes": getattr(address, "notes", ""),
    }


def _customer(order: Any) -> dict[str, Any] | None:
    user = order.user
    if user is None:
        return None
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "groups": sorted(group.name for group in user.groups.all()),
    }


def _event(event: Any) -> dict[str, Any]:
    key = getattr(event, "stockyard_key", None)
    return {
        "id": event.id,
        "event_type": event.event_type.code,
        "notes": event.notes,
        "date_created": _when(event.date_created),
        "key": key.key if key is not None else None,
        "lines": [
            {"line": quantity.line_id, "quantity": quantity.quantity}
            for quantity in event.line_quantities.all()
        ],
    }


def _paid(order: Any) -> str | None:
    amounts = [e.amount for e in order.payment_events.all() if e.event_type.name == PAID]
    return _money(sum(amounts, Decimal(0))) if amounts else None


def _order(order: Any) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "changed": _when(order.changed),
        "date_placed": _when(order.date_placed),
        "currency": order.currency,
        "total_incl_tax": _money(order.total_incl_tax),
        "total_excl_tax": _money(order.total_excl_tax),
        "shipping_incl_tax": _money(order.shipping_incl_tax),
        "shipping_excl_tax": _money(order.shipping_excl_tax),
        "shipping_method": order.shipping_method,
        "shipping_code": order.shipping_code,
        "customer": _customer(order),
        "email": order.email,
        "shipping_address": _address(order.shipping_address),
        "billing_address": _address(order.billing_address),
        "lines": [
            {
                "id": line.id,
                "partner": line.partner.code if line.partner else None,
                "partner_name": line.partner_name,
                "partner_sku": line.partner_sku,
                "upc": line.upc,
                "title": line.title,
                "product": line.product_id,
                "stockrecord": line.stockrecord_id,
                "quantity": line.quantity,
                "unit_price_incl_tax": _money(line.unit_price_incl_tax),
                "unit_price_excl_tax": _money(line.unit_price_excl_tax),
                "line_price_incl_tax": _money(line.line_price_incl_tax),
                "line_price_excl_tax": _money(line.line_price_excl_tax),
                "line_price_before_discounts_incl_tax": _money(
                    line.line_price_before_discounts_incl_tax
                ),
                "line_price_before_discounts_excl_tax": _money(
                    line.line_price_before_discounts_excl_tax
                ),
                "status": line.status,
            }
            for line in order.lines.all()
        ],
        "shipping_events": [_event(event) for event in order.shipping_events.all()],
        "paid": _paid(order),
    }


def _bad(message: str, status: int = 400) -> Response:
    return Response({"detail": message}, status=status)


class OrdersSince(APIView):
    permission_classes = (IsAdminUser,)

    def get(self, request: Request) -> Response:
        query = request.query_params
        since = parse_datetime(query.get("since", "")) if query.get("since") else None
        if query.get("since") and since is None:
            return _bad("since: an ISO 8601 date and time")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        try:
            after_id = int(query.get("after_id", 0))
            limit = min(max(int(query.get("limit", PAGE)), 1), MAX_PAGE)
        except ValueError:
            return _bad("after_id and limit: whole numbers")
        last_change = (
            OrderStatusChange.objects.filter(order=OuterRef("pk"))
            .order_by("-date_created")
            .values("date_created")[:1]
        )
        last_payment = (
            PaymentEvent.objects.filter(order=OuterRef("pk"))
            .order_by("-date_created")
            .values("date_created")[:1]
        )
        # Each side falls back to the placing: Greatest of a NULL is NULL on SQLite.
        orders = Order.objects.annotate(
            changed=Greatest(
                Coalesce(Subquery(last_change), "date_placed", output_field=DateTimeField()),
                Coalesce(Subquery(last_payment), "date_placed", output_field=DateTimeField()),
                output_field=DateTimeField(),
            )
        )
        if query.get("number"):  # one order by its number: what a connector links by
            orders = orders.filter(number=query["number"])
        if since is not None:
            orders = orders.filter(Q(changed__gt=since) | Q(changed=since, id__gt=after_id))
        page = list(
            orders.order_by("changed", "id")
            .select_related("user", "shipping_address", "billing_address")
            .prefetch_related(
                "lines__partner",
                "user__groups",
                "shipping_events__event_type",
                "shipping_events__line_quantities",
                "shipping_events__stockyard_key",
                "payment_events__event_type",
            )[: limit + 1]
        )
        more = len(page) > limit
        page = page[:limit]
        last = page[-1] if page else None
        cursor = (
            {"since": _when(last.changed), "after_id": last.id}
            if last is not None
            else {"since": _when(since) if since else None, "after_id": after_id}
        )
        return Response({"orders": [_order(o) for o in page], "next": cursor, "more": more})


class ShippingEvents(APIView):
    permission_classes = (IsAdminUser,)

    def post(self, request: Request, number: str) -> Response:
        order = get_object_or_404(Order, number=number)
        body = request.data if isinstance(request.data, dict) else {}
        key = body.get("key")
        if not isinstance(key, str) or not key or len(key) > 128:
            return _bad("key: a string of 1 to 128 characters")
        known = self._known(order, key)
        if known is not None:
            return known
        name = body.get("event_type") or "Shipped"
        if not isinstance(name, str) or not slugify(name):
            return _bad("event_type: a name")
        wanted = body.get("lines")
        lines, quantities = [], []
        if wanted is None:
            for line in order.lines.all():
                lines.append(line)
                quantities.append(line.quantity)
        else:
            by_sku = {line.partner_sku: line for line in order.lines.all()}
            for entry in wanted if isinstance(wanted, list) else [None]:
                if not isinstance(entry, dict) or entry.get("partner_sku") not in by_sku:
                    return _bad(f"lines: each a partner_sku of order {number} and a quantity")
                quantity = entry.get("quantity")
                if not isinstance(quantity, int) or quantity < 1:
                    return _bad("lines: quantity, a whole number above 0")
                lines.append(by_sku[entry["partner_sku"]])
                quantities.append(quantity)
        notes = "\n".join(
            f"{label}: {body[field]}"
            for label, field in (("carrier", "carrier"), ("tracking", "tracking_number"))
            if body.get(field)
        )
        event_type, _ = ShippingEventType.objects.get_or_create(
            code=slugify(name), defaults={"name": name}
        )
        try:
            with transaction.atomic():
                event = EventHandler(request.user).handle_shipping_event(
                    order, event_type, lines, quantities, reference=notes
                )
                ShippingEventKey.objects.create(key=key, event=event)
        except InvalidShippingEvent as exc:
            return _bad(str(exc))
        except IntegrityError:  # the same key, made meanwhile by a concurrent retry
            known = self._known(order, key)
            if known is not None:
                return known
            raise
        return Response(_event(event), status=201)

    @staticmethod
    def _known(order: Any, key: str) -> Response | None:
        found = ShippingEventKey.objects.select_related("event").filter(key=key).first()
        if found is None:
            return None
        if found.event.order_id != order.id:
            return _bad(f"key {key!r} was used for another order", status=409)
        return Response(_event(found.event), status=200)
