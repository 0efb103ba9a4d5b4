"""The `agent` connector: a source whose ERP sits behind a firewall, where a small program
(`stockyard agent`, docs/agent.md) reads the ERP and pushes what changed through the
signed inbound routes, and writes orders into it. The same ERP can also be the warehouse:
a second connection of this connector, kind `fulfillment` (its own webhook_secret),
whose `fulfill_order` items the agent runs (`create_fulfillment`) and whose fulfilments'
state and tracking the agent pushes (/v1/inbound/{id}/fulfillments).

Its blocking lane (products, images, customers it pushed) runs in Stockyard's workers as
any source's. Its non-blocking items (add_order) are run by the agent only (`remote`):
the flows stay as they are and call `create_order` here, which talks to nothing. The
service runs the item's flow once when the agent claims it: the call raises `RemoteCall`,
which is what the agent is handed (method and arguments); once the agent answers, the
service runs the flow again with that answer in `answers`, and `create_order` returns it
(docs/remote-workers.md, "Remote calls, replayed").

Settings: `description` (optional text). Secrets: `webhook_secret` (required): the agent
signs every request with it (Standard Webhooks); it is the agent's only credential.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from stockyard.connectors.base import Connector, parse_settings

# The answers of the remote program for this run of a flow: call name -> its result. Set
# by the service around a replay (stockyard.service.agent); None: no answer, ask for one.
answers: ContextVar[Mapping[str, Any] | None] = ContextVar("agent_answers", default=None)

MISSING_SECRET = "an agent connection needs a webhook_secret: the agent signs with it"
WEAK_SECRET = (
    "an agent connection's webhook_secret is the agent's only credential: give whsec_"
    " followed by at least 24 random bytes in base64 (docs/agent.md shows how to make one)"
)
# A secret anyone may guess would let them push into the catalog and take orders.
MIN_SECRET_BYTES = 24


def strong(secret: object) -> bool:
    """Whether the secret is `whsec_<base64>` of at least MIN_SECRET_BYTES bytes."""
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        return False
    return len(key) >= MIN_SECRET_BYTES


class RemoteCall(Exception):
    """A call only the agent can make: the flow stops here, and the agent is handed
    `method` and `args` (JSON). Not a StockyardError, so flows pass it through untouched."""

    def __init__(self, method: str, args: dict[str, Any]) -> None:
        super().__init__(f"{method} is run by the agent")
        self.method = method
        self.call_args = args


class AgentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=1000)


class AgentConnector(Connector):
    roles = frozenset({"source", "fulfillment"})
    remote: ClassVar[bool] = True
    required_secrets = frozenset({"webhook_secret"})

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.config = parse_settings(AgentSettings, settings, "agent")

    @classmethod
    def secret_problem(cls, name: str, value: Any) -> str | None:
        if name != "webhook_secret":
            return None
        if value is None:
            return MISSING_SECRET
        return None if strong(value) else WEAK_SECRET

    def create_order(self, order: dict[str, Any], key: str) -> str:
        return self._remote("create_order", order, key)

    def create_fulfillment(self, order: dict[str, Any], key: str) -> str:
        """The fulfilment's id in the ERP (by default the order's ERP code: the agent's
        profile may look up another, e.g. a dispatch note's)."""
        return self._remote("create_fulfillment", order, key)

    def _remote(self, method: str, order: dict[str, Any], key: str) -> str:
        found = answers.get()
        if found is not None and method in found:
            return str(found[method])
        raise RemoteCall(method, {"order": order, "key": key})
