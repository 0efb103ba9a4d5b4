"""The one table the app adds: which shipping event a caller's idempotency key made.

The event itself is Oscar's own ShippingEvent (order.ShippingEvent, with its lines and
quantities); this only lets a retried POST find it instead of making a second one, and
the unique key holds even when two retries race.
"""

from django.db import models


class ShippingEventKey(models.Model):
    key = models.CharField(max_length=128, unique=True)
    event = models.OneToOneField(
        "order.ShippingEvent", on_delete=models.CASCADE, related_name="stockyard_key"
    )
    date_created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
