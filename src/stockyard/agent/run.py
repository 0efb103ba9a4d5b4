"""The agent: its parts put together, one cycle (read -> outbox -> send -> orders), the
loop of `stockyard agent run`, `check` and `reconcile`, and its logs.

The loop is one thread: every poll_seconds it reads the ERP and queues what changed;
it sends the outbox whenever its back-off allows; between polls it long-polls Stockyard
for orders (when the profile has [orders]), so an order waits seconds, not a poll.
SIGTERM / SIGINT stop it after the current step (an order's transaction is never cut).
"""

from __future__ import annotations

import logging
import logging.handlers
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockyard.agent import AgentError
from stockyard.agent.changes import Reading, poll
from stockyard.agent.client import Client, Unreachable, detail
from stockyard.agent.config import AgentConfig, load_config
from stockyard.agent.files import FolderSource
from stockyard.agent.orders import (
    CommandWriter,
    ConnectionDisabled,
    FulfillmentWriter,
    NotOffered,
    OrderCalls,
    SqlWriter,
    Writer,
    work_once,
)
from stockyard.agent.outbox import FULFILLMENT, SOURCE, RoleStore, State
from stockyard.agent.profile import Profile, load_profile, settings
from stockyard.agent.read import Source, SqlSource, safe_url
from stockyard.agent.records import digest, opened
from stockyard.agent.send import Delivery, deliver

log = logging.getLogger("stockyard.agent")

CLAIM_WAIT = 20.0  # the long poll's wait (Stockyard allows up to 25)
MAX_BACKOFF = 300.0


def setup_logging(log_file: Path | None, level: int = logging.INFO) -> None:
    """To stderr, and to a rotating file (10 MB x 5) when configured."""
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not any(getattr(h, "_stockyard_agent", False) for h in root.handlers):
        stream = logging.StreamHandler()
        stream.setFormatter(fmt)
        stream._stockyard_agent = True  # type: ignore[attr-defined]
        root.addHandler(stream)
        if log_file is not None:
            if not log_file.parent.is_dir():
                raise AgentError(f"[agent] log_file: folder {log_file.parent} does not exist")
            rotating = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
            rotating.setFormatter(fmt)
            rotating._stockyard_agent = True  # type: ignore[attr-defined]
            root.addHandler(rotating)
    # httpx logs each request at INFO, with its URL: the long poll would fill the file.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class Backoff:
    """When sending may be tried again: doubling from 1 s up to MAX_BACKOFF."""

    failures: int = 0
    next_at: float = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.next_at

    def failed(self, now: float, longest: bool = False) -> float:
        self.failures += 1
        delay = MAX_BACKOFF if longest else min(MAX_BACKOFF, 2.0 ** (self.failures - 1))
        self.next_at = now + delay
        return delay

    def reset(self) -> None:
        self.failures, self.next_at = 0, 0.0


@dataclass
class Line:
    """One of the agent's connections: its [stockyard] source connection (orders) or its
    [fulfillment] connection (fulfilments). Each claims, settles and is sent its pushes on
    its own: one disabled or refusing does not hold the other back."""

    role: str
    connection: int
    calls: OrderCalls
    writer: Writer
    active: bool  # it has work to claim (a profile's [orders]; a [fulfillment] connection)
    what: str  # "orders", "fulfilments": for the log
    backoff: Backoff = field(default_factory=Backoff)
    paused_until: float = 0.0  # Stockyard offered no work (404, 409 disabled)
    disabled: str | None = None  # what Stockyard said when it was disabled


@dataclass
class CycleReport:
    reading: Reading | None = None
    queued: int = 0
    delivery: Delivery | None = None
    orders: int = 0
    notes: list[str] = field(default_factory=list)


class Agent:
    def __init__(self, config: AgentConfig, strict: bool = True) -> None:
        """`strict`: refuse to start (AgentError) on a start_problems(); `check` is not
        strict, it lists them."""
        self.config = config
        base = config.source.resolve().parent
        self.profile: Profile = load_profile(config.erp.profile, base)
        self.settings = settings(self.profile, dict(config.profile.settings), str(config.source))
        self.source = self._source()
        self.state = State(config.agent.state)
        fulfillment = config.fulfillment
        also = None
        if fulfillment is not None:
            also = (fulfillment.connection, str(config.fulfillment_secret()))
        self.client = Client(
            config.stockyard.url, config.stockyard.connection, config.secret(), also=also
        )
        # Outcomes are kept in the state database until Stockyard takes them.
        self.calls = OrderCalls(self.client, RoleStore(self.state, SOURCE))
        self.writer = self._writer()
        self.lines = [
            Line(
                SOURCE,
                config.stockyard.connection,
                self.calls,
                self.writer,
                self.profile.orders is not None,
                "orders",
            )
        ]
        if fulfillment is not None:
            calls = OrderCalls(
                self.client, RoleStore(self.state, FULFILLMENT), fulfillment.connection
            )
            self.lines.append(
                Line(
                    FULFILLMENT,
                    fulfillment.connection,
                    calls,
                    Writer(None, self._fulfillment_writer().create_fulfillment),
                    True,
                    "fulfilments",
                )
            )
        self.stopping = threading.Event()
        self.orphans_said = False  # the log said once that pushes wait for no connection
        if strict:
            problems = self.start_problems()
            if problems:
                self.close()
                raise AgentError("; ".join(problems))

    def start_problems(self) -> list[str]:
        """Why the agent must not start: the config, the profile and the state database
        disagree about fulfilments. Each would fail silently or spin if it ran."""
        out = []
        if self.config.fulfillment is not None and not self._reads_fulfillments():
            out.append(
                f"{self.config.source}: [fulfillment]: profile {self.profile.name} has no"
                " [fulfillments] (or its [files] fulfillments names no file): the agent"
                " would make fulfilments and never read their shipments, so the orders"
                " would stay open. Add [fulfillments] to the profile (agent-profiles.md)"
                " or remove [fulfillment]"
            )
        orphans = self._orphans()
        if orphans is not None:
            out.append(orphans)
        return out

    def _reads_fulfillments(self) -> bool:
        files = self.profile.files
        if files is not None:
            return bool(files.fulfillments)
        return self.profile.fulfillments is not None

    def _orphans(self) -> str | None:
        """Fulfilment pushes or outcomes in the state database while the config has no
        [fulfillment] connection (removed, or another config pointed at this state): they
        could never be sent, and waiting for them would keep the loop from sleeping."""
        if self.line(FULFILLMENT) is not None:
            return None
        batches, records, outcomes = self.state.waiting(FULFILLMENT)
        if not batches and not outcomes:
            return None
        config = self.config.source
        return (
            f"the state database {self.state.path} holds {batches} fulfilment push(es)"
            f" ({records} record(s)) and {outcomes} fulfilment outcome(s) for a"
            f" [fulfillment] connection, but {config} has no [fulfillment]: restore"
            " [fulfillment] (its connection and secret) to send them, or drop them for good"
            f" with `stockyard agent drop-fulfillments --config {config}`"
        )

    @property
    def backoff(self) -> Backoff:
        """The source connection's push back-off."""
        return self.lines[0].backoff

    @property
    def orders_paused_until(self) -> float:
        return self.lines[0].paused_until

    @orders_paused_until.setter
    def orders_paused_until(self, value: float) -> None:
        self.lines[0].paused_until = value

    def line(self, role: str) -> Line | None:
        return next((li for li in self.lines if li.role == role), None)

    @classmethod
    def from_file(cls, path: Path) -> Agent:
        return cls(load_config(path))

    def close(self) -> None:
        self.client.close()
        self.source.close()
        self.state.close()

    def _source(self) -> Source:
        erp, profile = self.config.erp, self.profile
        if profile.files is not None:
            if erp.folder is None:
                raise AgentError(
                    f"{self.config.source}: [erp] folder: profile {profile.name} reads CSV"
                    " exports: say which folder"
                )
            return FolderSource(erp.folder, profile.files)
        url = self.config.erp_url()
        if url is None:
            raise AgentError(
                f"{self.config.source}: [erp] url (or url_env): profile {profile.name} reads"
                " a database: give its SQLAlchemy URL"
            )
        return SqlSource(url, profile, self.settings, erp.read_isolation)

    def _writer(self) -> Writer:
        orders = self.profile.orders
        if orders is None:
            return Writer(None)
        sql = (
            SqlWriter(self.source.engine, orders, self.settings)
            if isinstance(self.source, SqlSource)
            else None
        )
        if orders.command is not None:
            return Writer(CommandWriter(orders, self.settings, sql).create_order)
        if sql is None:
            raise AgentError(f"profile {self.profile.name}: SQL [orders] need an [erp] url")
        return Writer(sql.create_order)

    def _fulfillment_writer(self) -> FulfillmentWriter:
        spec = self.profile.fulfillments
        engine = self.source.engine if isinstance(self.source, SqlSource) else None
        create = spec.create if spec is not None else None

        def made(remote_id: str) -> None:
            record = opened(remote_id)
            body = record.model_dump_json(exclude_defaults=True)
            self.state.made(remote_id, digest(record), body)

        return FulfillmentWriter(create, self.settings, engine, made)

    def describe(self) -> str:
        where = (
            str(self.config.erp.folder)
            if isinstance(self.source, FolderSource)
            else safe_url(self.config.erp_url() or "")
        )
        fulfillment = self.line(FULFILLMENT)
        return (
            f"profile {self.profile.name}, ERP {where}, Stockyard {self.client.url}"
            f" connection {self.client.connection}"
            + ("" if fulfillment is None else f", fulfilments connection {fulfillment.connection}")
        )

    # ---------------------------------------------------------------------- steps

    def read(self) -> tuple[Reading, int]:
        """Read the ERP; what changed into the outbox (one transaction)."""
        reading = poll(
            self.source, self.profile, self.state, fulfillments=self.line(FULFILLMENT) is not None
        )
        queued = self.state.put(reading.change, self.config.agent.batch_size)
        changed = {t: len(r) for t, r in reading.change.records.items() if r}
        if changed:
            log.info("read %s; queued %s", reading.read, changed)
        return reading, queued

    def send(self, now: float | None = None) -> Delivery | None:
        """Deliver the outbox, each connection's pushes in order and on its own back-off.
        What was delivered (None: every connection with pushes waiting is backing off)."""
        now = time.monotonic() if now is None else now
        total: Delivery | None = None
        for role in self.state.pending_roles():
            line = self.line(role)
            if line is None:
                orphans = self._orphans()
                if orphans is not None and not self.orphans_said:
                    log.error("%s", orphans)
                    self.orphans_said = True
                continue
            delivery = self._send(line, now)
            if delivery is None:
                continue
            if total is None:
                total = delivery
            else:
                total.batches += delivery.batches
                total.records += delivery.records
                total.dead += delivery.dead
                total.retry = total.retry or delivery.retry
                total.blocked = total.blocked or delivery.blocked
                total.disabled = total.disabled or delivery.disabled
        return total

    def _send(self, line: Line, now: float) -> Delivery | None:
        if not line.backoff.ready(now):
            return None
        connection = None if line.role == SOURCE else line.connection
        delivery = deliver(self.state, self.client, line.role, connection)
        if delivery.records:
            log.info(
                "delivered %d record(s) in %d push(es) to connection %d",
                delivery.records,
                delivery.batches,
                line.connection,
            )
            self._enabled(line)
        if delivery.disabled:
            line.backoff.failed(now, longest=True)
            self._disabled(line, str(delivery.blocked))
        elif delivery.retry or delivery.blocked:
            delay = line.backoff.failed(now, longest=delivery.blocked is not None)
            waiting = self.state.pending()[1]
            log.warning(
                "%s; %d record(s) wait in the outbox, next try in %.0f s",
                delivery.retry or delivery.blocked,
                waiting,
                delay,
            )
        else:
            line.backoff.reset()
        return delivery

    def next_send(self) -> float:
        """When the next push may be tried (monotonic): the soonest back-off's end of the
        connections with pushes waiting; inf when none of the agent's has any (pushes for
        a connection it does not have must not keep the loop from waiting)."""
        pending = self.state.pending_roles()
        waiting = [li.backoff.next_at for li in self.lines if li.role in pending]
        return min(waiting, default=math.inf)

    def work(self, wait: float) -> int:
        """Claim and run each connection's work: the last one ready long-polls up to
        `wait` s, the others only look (wait 0). The orders' connection long-polls (an
        order waits seconds); fulfilments are looked for once a round."""
        now = time.monotonic()
        ready = [li for li in self.lines if li.active and now >= li.paused_until]
        ready.sort(key=lambda li: li.role == SOURCE)
        if not ready:
            if wait > 0:
                self.stopping.wait(wait)
            return 0
        done = 0
        for n, line in enumerate(ready):
            done += self._work(line, wait if n == len(ready) - 1 else 0.0)
        return done

    def _work(self, line: Line, wait: float) -> int:
        try:
            done = work_once(line.calls, line.writer, wait)
            self._enabled(line)
            if line.calls.store.unsettled():  # backing off before settling them again
                self.stopping.wait(min(wait, max(0.0, line.calls.settle_at - time.monotonic())))
            return done
        except ConnectionDisabled as exc:
            line.paused_until = time.monotonic() + MAX_BACKOFF
            self._disabled(line, str(exc))
        except NotOffered as exc:
            log.error(
                "Stockyard offers no %s work to this agent (%s): asking again in %.0f s",
                line.what,
                exc,
                MAX_BACKOFF,
            )
            line.paused_until = time.monotonic() + MAX_BACKOFF
        except Unreachable as exc:
            log.warning("claiming %s: %s", line.what, exc)
            self.stopping.wait(min(wait, 5.0))
        except AgentError as exc:
            log.error("%s", exc)
            self.stopping.wait(min(wait, 30.0))
        return 0

    def _disabled(self, line: Line, said: str) -> None:
        """The operator disabled the connection: said once, however often the agent asks
        (every MAX_BACKOFF s for claims and pushes alike)."""
        if line.disabled is None:
            log.warning(
                "Stockyard: %s. No %s are claimed and its pushes wait in the outbox"
                " (nothing is dropped) until it is enabled again; asking every %.0f s",
                said,
                line.what,
                MAX_BACKOFF,
            )
        line.disabled = said

    def _enabled(self, line: Line) -> None:
        if line.disabled is not None:
            log.info("Stockyard: connection %d is enabled again", line.connection)
            line.disabled = None

    def cycle(self, claim_wait: float = 0.0) -> CycleReport:
        """One read + send + claim: `stockyard agent once`."""
        report = CycleReport()
        report.reading, report.queued = self.read()
        report.delivery = self.send()
        report.orders = self.work(claim_wait)
        return report

    # ----------------------------------------------------------------------- loop

    def run(self) -> None:
        problems = self.start_problems()
        if problems:
            raise AgentError("; ".join(problems))
        log.info("agent started: %s", self.describe())
        poll_every = self.config.agent.poll_seconds
        next_poll = time.monotonic()
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_poll:
                try:
                    self.read()
                except AgentError as exc:  # the ERP is down or a query broke: keep going
                    log.error("reading the ERP: %s", exc)
                next_poll = now + poll_every
            if self.state.pending()[0]:
                self.send()
            if self.stopping.is_set():
                break
            until_poll = max(0.0, next_poll - time.monotonic())
            wait = min(CLAIM_WAIT, until_poll)
            if self.state.pending()[0]:
                wait = min(wait, max(0.0, self.next_send() - time.monotonic()))
            self.work(wait)
        log.info("agent stopped")

    def install_signals(self) -> None:
        def stop(signum: int, frame: Any) -> None:
            log.info("signal %d: stopping after the current step", signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    # ---------------------------------------------------------------------- check

    def hello(self, line: Line | None = None) -> str:
        try:
            response = (
                self.client.agent("hello", {}, timeout=15)
                if line is None or line.role == SOURCE
                else self.client.agent("hello", {}, timeout=15, connection=line.connection)
            )
        except Unreachable as exc:
            return f"Stockyard not reachable: {exc}"
        if response.status_code == 200:
            data = response.json()
            return (
                f"Stockyard reachable: connection {data.get('connection')}"
                f" ({data.get('description', '')}), the credential is accepted"
            )
        return f"Stockyard answered hello with {response.status_code}: {detail(response)}"

    def check(self, samples: int = 3) -> dict[str, Any]:
        """What a poll would push now, without pushing or storing anything."""
        fulfillment = self.line(FULFILLMENT)
        reading = poll(self.source, self.profile, self.state, samples, fulfillment is not None)
        out: dict[str, Any] = {
            "agent": self.describe(),
            "read": reading.read,
            "would_push": {t: len(r) for t, r in reading.change.records.items()},
            "samples": reading.samples,
            "problems": self.start_problems()
            + [f"{p.topic} {p.key}: {p.message}" for p in reading.problems],
            "outbox": dict(zip(("batches", "records"), self.state.pending(), strict=True)),
            "dead_letters": self.state.dead_count(),
            "dead": [{"topic": d["topic"], "error": d["error"]} for d in self.state.dead(5)],
        }
        if isinstance(self.source, SqlSource) and self.profile.orders is not None:
            out["orders"] = self._check_orders()
        out["stockyard"] = self.hello()
        if fulfillment is not None:
            out["fulfillments_made"] = len(self.state.made_fulfillments())
            out["stockyard_fulfillment"] = self.hello(fulfillment)
        return out

    def _check_orders(self) -> str:
        orders = self.profile.orders
        assert orders is not None and isinstance(self.source, SqlSource)
        if orders.find is None:
            return "write step: the command " + " ".join(orders.command or [])
        import sqlalchemy as sa

        from stockyard.agent.orders import Failure, _bind, order_params

        params = order_params(
            {"remote_id": "stockyard-agent-check", "lines": []}, "check", self.settings
        )
        try:
            with self.source.engine.connect() as conn:
                statement = sa.text(orders.find)
                conn.execute(statement, _bind(statement, params, "find")).first()
        except Failure as f:
            return f"[orders] find: {f.message}"
        except sa.exc.SQLAlchemyError as exc:
            from stockyard.agent.read import db_error

            return f"[orders] find fails: {db_error(exc)}"
        return "[orders] find runs"

    def reconcile(self) -> None:
        self.state.forget()
