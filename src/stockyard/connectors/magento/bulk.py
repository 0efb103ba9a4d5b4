"""Whole products written through Magento's asynchronous bulk API (issue 19;
docs/magento-notes.md, "Large syncs: the asynchronous bulk API" and "Fixes after the
second review").

One chunk of products is a few bulk jobs in sequence, each awaited before the next needs
it: (1) `POST /async/bulk/V1/products` with every simple product and configurable child;
then the children's ids, and whether their parents exist, are read (`GET /V1/products`,
`sku in`, 300 a page); (2) the configurable parents, and links of children to parents
that exist already, together with (3) the stock as
`POST /async/bulk/V1/inventory/source-items`, one element per product. Prices travel in the
product bodies (and as base prices per product when prices are store-scoped).

A product the store has (by the flow's remote id, then the search) gets what the
per-product path sends it (update_product, then its variants' prices), never a whole new
body: status, visibility, URL key, websites and a parent's links and options stay as the
merchant left them. A new product gets the whole body; a new child of a parent that exists
is linked to it (as `_add_children` does), not by replacing the parent's links.

Magento names every bulk itself (a UUID in the answer) and keeps no reference of the
client's, so a bulk is found again by what it writes: before posting a stage, the open
operations holding the stage's first SKU are searched (`GET /V1/bulk`) and a bulk whose
elements are exactly this stage's is resumed, unless a newer open bulk of the same topic
writes any of its SKUs (that one would run after it and win). Anything else is posted
again, which is harmless: a product save by SKU is an upsert, and the newest bulk runs last
(bulk_find.py).

One call waits at most `max_wait` seconds in all (never more than BULK_CALL_SECONDS), with
back-off between status reads; still open then, the store's consumers are probably not
running, and the item goes back to the queue with a TransientError that says so. An
operation that failed fails only the product it belongs to (found by the SKU in the
operation's data).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stockyard.connectors.base import BULK_CALL_SECONDS, ChannelProduct, ProductResult, Result
from stockyard.connectors.magento import bulk_find as find
from stockyard.connectors.magento.client import MagentoNotFound, items
from stockyard.errors import PermanentError, TransientError

if TYPE_CHECKING:
    from stockyard.connectors.magento import MagentoConnector

Obj = dict[str, Any]
PRODUCTS = "async/bulk/V1/products"
LINKS = "async/bulk/V1/configurable-products/bySku/child"
SOURCE_ITEMS = "async/bulk/V1/inventory/source-items"
BASE_PRICES = "async/bulk/V1/products/base-prices"
# Magento's input limit for asynchronous requests, when a store turns input limits on
# (Adobe, "API security: input limiting"): larger stages go as several bulks.
MAX_ELEMENTS = 5000
# Children's ids are read with `sku in`: at most the 300 a page the same limits allow, and
# SKUs of at most LOOKUP_CHARS together, so the URL stays under common 8 KiB proxy limits.
SKUS_PER_LOOKUP = 300
LOOKUP_CHARS = 5000
OPEN, COMPLETE = find.OPEN, 1
FAILURES = {2: "failed (retriable)", 3: "failed", 5: "rejected"}


@dataclass
class Pacing:
    first_poll: float = 1.0  # seconds before the first status read, doubled each time
    max_interval: float = 15.0
    max_wait: float = 300.0  # then the item goes back to the queue


DEFAULT_PACING = Pacing()


@dataclass
class Stage:
    """One bulk route's elements; `owner(element)` says whose product it writes."""

    route: str
    elements: list[Obj]
    owner: Callable[[Obj], str]  # element -> SKU
    # (UUID, its elements) per part: an operation that names no product fails its part
    bulks: list[tuple[str, list[Obj]]] = field(default_factory=list)


def bulk_products(
    connector: MagentoConnector,
    products: list[ChannelProduct],
    remote_ids: Mapping[str, str],
    key: str,
    pacing: Pacing | None = None,
) -> list[ProductResult]:
    # `key` is not sent: Magento keeps no reference of the client's on a bulk, which is
    # found again by its elements instead (module docstring).
    run = Run(connector, pacing or _pacing(connector))
    return run.products(products, remote_ids)


def _pacing(connector: MagentoConnector) -> Pacing:
    # Unset, the setting's default and DEFAULT_PACING's agree (300 s); the module's
    # value is kept so that the intervals and the wait move together.
    if "bulk_max_wait" not in connector.config.model_fields_set:
        return DEFAULT_PACING
    wait = float(connector.config.bulk_max_wait)
    return Pacing(DEFAULT_PACING.first_poll, DEFAULT_PACING.max_interval, wait)


class Run:
    def __init__(
        self,
        connector: MagentoConnector,
        pacing: Pacing,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.c = connector
        self.api = connector.api
        self.pacing = pacing
        self.clock, self.sleep = clock, sleep
        # One deadline for the whole call, all stages together: the call must return
        # within BULK_CALL_SECONDS, which the item's timeout is set above.
        self.wait = min(pacing.max_wait, BULK_CALL_SECONDS)
        self.deadline = clock() + self.wait
        self.errors: dict[str, PermanentError] = {}  # product code -> why it failed
        self.unstocked: set[str] = set()  # codes whose stock did not go

    def products(
        self, products: list[ChannelProduct], remote_ids: Mapping[str, str]
    ) -> list[ProductResult]:
        owner: dict[str, str] = {}  # sku -> product code
        simples: list[Obj] = []
        configurables: list[ChannelProduct] = []
        self._collisions(products)
        # Every SKU, linked or not: a first sync of a store that has the products already
        # sends them unlinked, and they must get what the per-product path sends after
        # find_product links them, not a whole new body (status, URL key, visibility).
        known = self._lookup([v.sku for p in products for v in p.variants])
        for p in products:
            if p.code in self.errors:
                continue
            try:
                bodies = self._bodies(p, remote_ids.get(p.code), known)
            except PermanentError as exc:
                self.errors[p.code] = exc
                continue
            owner |= {v.sku: p.code for v in p.variants}
            simples += bodies
            if _configurable(p):
                configurables.append(p)
        by_sku = lambda e: str(e["product"]["sku"])  # noqa: E731
        self._run([Stage(PRODUCTS, [{"product": b} for b in simples], by_sku)], owner)
        parents = self._parents([p for p in configurables if p.code not in self.errors])
        owner |= {p.code: p.code for p in configurables}
        ok = [p for p in products if p.code not in self.errors]
        self._run([*parents, *self._stock_stages(ok, owner)], owner)
        self._group_prices([p for p in ok if p.code not in self.errors], owner)
        return [self._result(p) for p in products]

    def _group_prices(self, products: list[ChannelProduct], owner: dict[str, str]) -> None:
        """Customer-group prices as the per-product path sends them (prices.py): only
        channels mapping tiers to groups have any, and they need the SKUs to exist."""
        from stockyard.connectors.magento import prices

        grouped = [v for p in products for v in p.variants if v.fields.get(prices.FIELD)]
        if not grouped:
            return
        results = {v.sku: Result(v.sku, remote_id=v.sku) for v in grouped}
        prices.send_group_prices(self.api, grouped, results)
        for sku, result in results.items():
            if result.error is not None:
                self.errors.setdefault(owner[sku], PermanentError(str(result.error)))

    # ------------------------------------------------------------------ bodies

    def _collisions(self, products: list[ChannelProduct]) -> None:
        """A configurable's code that is another product's SKU in this chunk would save
        both as one product (MySQL compares SKUs without case): both fail instead."""
        whose: dict[str, str] = {}  # lower-cased SKU -> product code
        for p in products:
            for v in p.variants:
                whose.setdefault(v.sku.lower(), p.code)
        for p in products:
            other = whose.get(p.code.lower())
            if other is None or other == p.code or not p.variants or not _configurable(p):
                continue
            why = (
                f"magento: configurable product {p.code} and a variant of {other} have the"
                " same SKU (Magento compares SKUs without case): neither is sent"
            )
            self.errors[p.code] = self.errors[other] = PermanentError(why)

    def _bodies(
        self, p: ChannelProduct, remote_id: str | None, known: Mapping[str, Obj]
    ) -> list[Obj]:
        """The simple products of one product: itself, or a configurable's children. A
        SKU the store has gets what the per-product path sends it, not a whole body."""
        if not p.variants:
            raise PermanentError(f"magento: product {p.code} has no variants")
        if not _configurable(p):
            v = p.variants[0]
            _same(p.code, remote_id, v.sku)
            if v.sku in known:  # update_product, then the variant's price
                return [self.c._update_body(p, v.sku) | self._price(v)]
            return [self.c._variant_body(p, v, child=False)]
        if p.code in {v.sku for v in p.variants}:
            raise PermanentError(
                f"magento: product {p.code}: a configurable product's SKU is its code, which"
                " one of its variants also has"
            )
        _same(p.code, remote_id, p.code)
        old = [{"sku": v.sku} | self._price(v) for v in p.variants if v.sku in known]
        new = [self.c._variant_body(p, v, child=True) for v in p.variants if v.sku not in known]
        return [body for body in old if len(body) > 1] + new  # an existing child: its price

    def _price(self, v: Any) -> Obj:
        """An existing variant's price as the per-product path writes it: the global price
        (store 0) goes in the save; a store-scoped one goes as base prices."""
        from stockyard.connectors.magento import _number

        price = _number(v, "price")
        return {} if price is None or self.c.config.price_store_id else {"price": price}

    def _parents(self, configurables: list[ChannelProduct]) -> list[Stage]:
        """New parents saved with their options and links; existing ones (the search
        says which) get what update_product sends, and links to the children they lack
        (as _add_children links them), so that children the merchant added stay."""
        if not configurables:
            return []
        found = self._lookup([s for p in configurables for s in (p.code, *_skus_of(p))])
        bodies: list[Obj] = []
        links: list[Obj] = []
        for p in configurables:
            try:
                bodies.append({"product": self._parent(p, found, links)})
            except PermanentError as exc:
                self.errors[p.code] = exc
        by_sku = lambda e: str(e["product"]["sku"])  # noqa: E731
        by_child = lambda e: str(e["childSku"])  # noqa: E731
        return [Stage(PRODUCTS, bodies, by_sku), Stage(LINKS, links, by_child)]

    def _parent(self, p: ChannelProduct, found: Mapping[str, Obj], links: list[Obj]) -> Obj:
        missing = [s for s in _skus_of(p) if s not in found]
        if missing:
            raise PermanentError(f"magento: {', '.join(missing[:3])} not found after the bulk save")
        ids = [int(found[s]["id"]) for s in _skus_of(p)]
        parent = found.get(p.code)
        if parent is None:
            return self.c._parent_body(p, ids)
        if parent.get("type_id") != "configurable":
            raise PermanentError(
                f"magento: product {p.code}: the store's {p.code} is a"
                f" {parent.get('type_id')} product: it cannot take variants"
            )
        held = (parent.get("extension_attributes") or {}).get("configurable_product_links")
        held = set(held or [])
        links += [
            {"sku": p.code, "childSku": s}
            for s, i in zip(_skus_of(p), ids, strict=True)
            if i not in held
        ]
        return self.c._update_body(p, p.code)

    def _stock_stages(self, products: list[ChannelProduct], owner: dict[str, str]) -> list[Stage]:
        stages = []
        levels = {p.code: {v.sku: self.c._stock(v) for v in p.variants} for p in products}
        items = {
            code: [
                {"sku": sku, "source_code": s, "quantity": q, "status": int(q > 0)}
                for sku, per in skus.items()
                for s, q in per.items()
            ]
            for code, skus in levels.items()
        }
        elements = [{"sourceItems": its} for its in items.values() if its]
        if elements and self.c.stock.msi is not False:
            stages.append(Stage(SOURCE_ITEMS, elements, lambda e: str(e["sourceItems"][0]["sku"])))
        elif elements:  # a store without MSI: the legacy stock items, by the per-product path
            self._legacy_stock(
                {sku: per for skus in levels.values() for sku, per in skus.items()}, owner
            )
        store = self.c.config.price_store_id
        if store:  # store-scoped prices: the product save wrote the global one
            prices = [
                {"prices": [{"sku": v.sku, "price": pr, "store_id": store} for v, pr in ps]}
                for ps in (self._prices(p) for p in products)
                if ps
            ]
            if prices:
                stages.append(Stage(BASE_PRICES, prices, lambda e: str(e["prices"][0]["sku"])))
        return stages

    def _prices(self, p: ChannelProduct) -> list[tuple[Any, float]]:
        from stockyard.connectors.magento import _number

        found = [(v, _number(v, "price")) for v in p.variants]
        return [(v, price) for v, price in found if price is not None]

    def _legacy_stock(self, levels: dict[str, dict[str, float]], owner: dict[str, str]) -> None:
        """Stock items SKU by SKU: one the store refuses leaves only its product unstocked
        (the flow sends its variants again, by the per-product path)."""
        for sku in self.c.stock.set_each(levels, compare=True, check=self.check):
            self.unstocked.add(owner.get(sku, ""))

    # ------------------------------------------------------------ ids of children

    def _lookup(self, skus: list[str]) -> dict[str, Obj]:
        """The store's products with these SKUs (exactly), by SKU."""
        if not skus:
            return {}
        plain = [s for s in skus if "," not in s]  # `in` splits its value on commas
        found = self.c._search([s for s in skus if "," in s])
        for chunk in _lookups(plain):
            self.check()
            prefix = "searchCriteria[filterGroups][0][filters][0]"
            answer = self.api.get(
                "V1/products",
                {
                    f"{prefix}[field]": "sku",
                    f"{prefix}[value]": ",".join(chunk),
                    f"{prefix}[conditionType]": "in",
                    "searchCriteria[pageSize]": len(chunk),
                },
            )
            wanted = set(chunk)
            for item in items(answer, "GET /V1/products"):
                if item.get("sku") in wanted:  # MySQL compares without case
                    found[item["sku"]] = item
        return found

    # ------------------------------------------------------------------- stages

    def _run(self, stages: list[Stage], owner: dict[str, str]) -> None:
        """Start every stage (resuming an open bulk of the same elements where there is
        one), then wait for all of them; failed operations fail their products."""
        stages = [s for s in stages if s.elements]
        for stage in stages:
            self._start(stage, owner)
        for stage in stages:
            for bulk, part in stage.bulks:
                self._fail(stage, bulk, part, self._wait(bulk, self.deadline), owner)

    def _start(self, stage: Stage, owner: dict[str, str]) -> None:
        for start in range(0, len(stage.elements), MAX_ELEMENTS):
            part = stage.elements[start : start + MAX_ELEMENTS]
            found = find.open_bulk(self.api, part, stage.owner, self.check)
            if found is None:
                try:
                    found = self._post(stage, part, owner)
                except MagentoNotFound:
                    if stage.route != SOURCE_ITEMS:
                        raise
                    self._no_msi(part, owner)  # a store without MSI: 404 on its routes
                    continue
            stage.bulks.append((found, part))

    def _post(self, stage: Stage, part: list[Obj], owner: dict[str, str]) -> str:
        answer = self.api.call("POST", stage.route, part)
        if not isinstance(answer, dict) or not answer.get("bulk_uuid"):
            raise PermanentError(f"magento: POST /{stage.route} answered no bulk_uuid")
        for item in answer.get("request_items") or []:
            n = item.get("id")
            if item.get("status") == "rejected" and isinstance(n, int) and n < len(part):
                why = PermanentError(f"magento: {stage.owner(part[n])} rejected by the store")
                self.errors.setdefault(owner.get(stage.owner(part[n]), ""), why)
        return str(answer["bulk_uuid"])

    def _no_msi(self, part: list[Obj], owner: dict[str, str]) -> None:
        levels: dict[str, dict[str, float]] = {}
        for element in part:
            for item in element["sourceItems"]:
                levels.setdefault(item["sku"], {})[item["source_code"]] = item["quantity"]
        self.c.stock.msi = None  # let the stock module learn it and fall back (or refuse)
        self._legacy_stock(levels, owner)

    def check(self) -> None:
        """Past the call's deadline a TransientError: no more requests in this call (the
        retry resumes; what was written stays written)."""
        if self.clock() >= self.deadline:
            raise TransientError(
                f"magento: the bulk call ran out of its {self.wait:g} s: the next attempt"
                " goes on where this one stopped",
                retry_after=min(60.0, self.wait),
            )

    def _wait(self, bulk: str, deadline: float) -> list[Obj]:
        """The bulk's operations once none is open; past the deadline a TransientError."""
        interval = self.pacing.first_poll
        while True:
            self.sleep(min(interval, max(0.0, deadline - self.clock())))
            try:
                ops = find.operations(self.api, bulk, "status")
            except MagentoNotFound:
                raise TransientError(
                    f"magento: bulk {bulk} is not found: the next attempt starts it again"
                ) from None
            still = sum(1 for op in ops if op.get("status") == OPEN)
            if not still:
                return ops
            if self.clock() >= deadline:
                raise TransientError(
                    f"magento: bulk {bulk} still has {still} of {len(ops)} operations open"
                    f" after {self.wait:g} s: the store's consumers are probably"
                    " not running (cron, or bin/magento queue:consumers:start"
                    " async.operations.all); the next attempt goes on waiting for this bulk",
                    retry_after=min(60.0, self.wait),
                )
            interval = min(interval * 2, self.pacing.max_interval)

    def _fail(
        self, stage: Stage, bulk: str, part: list[Obj], ops: list[Obj], owner: dict[str, str]
    ) -> None:
        if not ops:  # a bulk that was posted has an operation per element
            self._fail_part(stage, part, owner, f"magento: bulk {bulk} has no operations")
            return
        if all(op.get("status") == COMPLETE for op in ops):
            return
        skus = {stage.owner(e) for e in part}
        # Which element an operation was is read from its data, not its id: what `id`
        # counts (the request's index or a row id) differs between Magento versions.
        failed = [
            op
            for op in find.operations(self.api, bulk, "detailed-status")
            if op.get("status") != COMPLETE
        ]
        unmatched = [op for op in failed if self._sku(stage, op) not in skus]
        if unmatched or not failed:
            # Older Magento keeps meta_information otherwise: the failure cannot be told
            # apart, so none of the part counts as written (never a silent loss).
            open_ = [o for o in ops if o.get("status") != COMPLETE]
            shown = unmatched[0] if unmatched else open_[0]
            text = _why(shown, f"an operation of bulk {bulk} that names none of ours")
            self._fail_part(stage, part, owner, text)
        for op in failed:
            sku = self._sku(stage, op)
            if sku in skus:
                self._fail_code(stage, owner.get(sku or "", ""), _why(op, sku or ""))

    @staticmethod
    def _sku(stage: Stage, op: Obj) -> str | None:
        try:
            return stage.owner(find.element(op))
        except (KeyError, IndexError, TypeError, ValueError):
            return None

    def _fail_part(self, stage: Stage, part: list[Obj], owner: dict[str, str], text: str) -> None:
        for element in part:
            self._fail_code(stage, owner.get(stage.owner(element), ""), text)

    def _fail_code(self, stage: Stage, code: str, text: str) -> None:
        if not code:
            return
        if stage.route == SOURCE_ITEMS:
            self.unstocked.add(code)  # the flow sends its variants again
        else:
            self.errors.setdefault(code, PermanentError(text))

    # ------------------------------------------------------------------ results

    def _result(self, p: ChannelProduct) -> ProductResult:
        if p.code in self.errors:
            return ProductResult(p.code, error=self.errors[p.code])
        remote = p.code if _configurable(p) else p.variants[0].sku
        # Stock not written: no variant is claimed as sent, so the flow sends them again.
        variants = {} if p.code in self.unstocked else {v.sku: v.sku for v in p.variants}
        return ProductResult(p.code, remote_id=remote, variants=variants)


def _why(op: Obj, whose: str) -> str:
    status = op.get("status")
    what = FAILURES.get(status, "") if isinstance(status, int) else ""
    what = what or f"status {status}"
    return f"magento: bulk save of {whose} {what}: {op.get('result_message')}"


def _lookups(skus: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for sku in skus:
        if chunk and (len(chunk) == SKUS_PER_LOOKUP or size + len(sku) + 1 > LOOKUP_CHARS):
            yield chunk
            chunk, size = [], 0
        chunk.append(sku)
        size += len(sku) + 1
    if chunk:
        yield chunk


def _skus_of(p: ChannelProduct) -> list[str]:
    return [v.sku for v in p.variants]


def _configurable(p: ChannelProduct) -> bool:
    from stockyard.connectors.magento import _options

    return not (len(p.variants) == 1 and not _options(p.variants[0]))


def _same(code: str, remote_id: str | None, made: str) -> None:
    if remote_id is not None and remote_id != made:
        raise PermanentError(
            f"magento: product {code} is {remote_id} in the store but would be {made} now"
            " (a simple product became configurable or back): sent by its own item"
        )
