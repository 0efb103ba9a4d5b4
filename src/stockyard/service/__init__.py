"""The service layer: every operation the API, console and CLI offer, checked against the
caller's role on the client it touches. It knows nothing of HTTP.

One class, `Stockyard`, assembled from one module per area; shells see it and the view
types below, never the queue or the stores behind it. Tenancy: a caller without any role
on a client gets NotFound for it and for everything in it, exactly as if it did not
exist; a caller whose role is too low on its own client gets Forbidden.
"""

from stockyard.service.accounts import AccountsService
from stockyard.service.agent import AgentService
from stockyard.service.audit import AuditService
from stockyard.service.base import Parts
from stockyard.service.catalog import CatalogService
from stockyard.service.clients import Client, ClientsService
from stockyard.service.connections import ConnectionsService, ConnectionView
from stockyard.service.customers import CustomersService
from stockyard.service.items import (
    ACTIONS,
    BulkGroup,
    ItemsService,
    QueueSummary,
    SkipWarning,
    bulk_filter,
)
from stockyard.service.lanes import LanesService
from stockyard.service.push import PushService
from stockyard.service.subscriptions import SubscriptionsService


class Stockyard(
    ClientsService,
    AccountsService,
    ItemsService,
    LanesService,
    ConnectionsService,
    CatalogService,
    CustomersService,
    SubscriptionsService,
    PushService,
    AuditService,
    AgentService,
):
    """The one service object the shells call, built on an application's parts."""


__all__ = [
    "ACTIONS",
    "BulkGroup",
    "Client",
    "ConnectionView",
    "Parts",
    "QueueSummary",
    "SkipWarning",
    "Stockyard",
    "bulk_filter",
]
