"""`manage.py record_payment <order number> <amount> [--reference R]`: the merchant marks a
trade order (an invoice on account) paid. It writes Oscar's own PaymentEvent of type "Paid"
through Oscar's EventHandler, as the dashboard would; the orders endpoint then reports the
order's `paid` and moves its `changed`. An admin-side tool for the tests' launcher
(systems/oscar.py, OscarStore.record_payment), not an API."""

from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError
from oscar.core.loading import get_class, get_model

from stockyard_trade.views import PAID

Order = get_model("order", "Order")
PaymentEventType = get_model("order", "PaymentEventType")
EventHandler = get_class("order.processing", "EventHandler")


class Command(BaseCommand):
    help = "Record a payment (Oscar PaymentEvent of type Paid) on an order."

    def add_arguments(self, parser):
        parser.add_argument("number")
        parser.add_argument("amount")
        parser.add_argument("--reference", default="")

    def handle(self, number, amount, reference, **options):
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise CommandError(f"amount: a decimal such as 12.50, not {amount!r}") from None
        if not value.is_finite() or value <= 0:
            raise CommandError("amount: above 0")
        order = Order.objects.filter(number=number).first()
        if order is None:
            raise CommandError(f"no order {number!r}")
        event_type, _ = PaymentEventType.objects.get_or_create(name=PAID)
        event = EventHandler().handle_payment_event(order, event_type, value, reference=reference)
        self.stdout.write(str(event.id))
