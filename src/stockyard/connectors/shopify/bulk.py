"""Whole products written through one Shopify bulk operation (issue 18): the JSONL of
productSet variables is uploaded to a staged target, `bulkOperationRunMutation` runs it,
the operation is polled, and its result JSONL says, line by line, what became of each
product (docs/shopify-notes.md, "Bulk operations"). Which line names which shop product
(by id, by a free handle, or no line: the product's own item) is decided from an export of
the shop's products taken just before (`bulk_export`).

One bulk mutation runs per shop at a time. Before starting, the runner reads the app's
latest bulk mutations: one still running that is this item's own (an earlier attempt
started it, then crashed or ran out of polling time) is polled again; one finished is read
again; anyone else's running hands the item back (TransientError with retry_after). The
item's own operation is recognised by its operation name, which carries a hash of the
item's idempotency key and of the products it writes: the item payload cannot change and
BulkOperation has no field that reads clientIdentifier back, but it does give `query`.

A worker polls at most `max_poll` seconds, then hands the item back: a bulk operation can
run for many minutes and must not hold a worker that long.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from stockyard import outbound
from stockyard.connectors.base import ChannelProduct, ChannelVariant, ProductResult
from stockyard.connectors.shopify import documents as d
from stockyard.errors import HandlerError, PermanentError, TransientError

if TYPE_CHECKING:
    from stockyard.connectors.shopify import ShopifyConnector

# Where a real shop's staged uploads and results live (Google Cloud Storage, per Shopify's
# bulk-import guide and the URLs its answers carry); anything else is refused unless it is
# the host the connection itself talks to (a proxy, or the test double).
UPLOAD_HOSTS = frozenset({"shopify-staged-uploads.storage.googleapis.com"})
RESULT_HOSTS = frozenset({"storage.googleapis.com"})
OPERATION = "StockyardBulkProductSet"
ACTIVE = frozenset({"CREATED", "RUNNING", "CANCELING"})
RESTARTABLE = frozenset({"FAILED", "CANCELED", "EXPIRED"})
BUSY_CODES = frozenset({"OPERATION_IN_PROGRESS", "LIMIT_REACHED", "INTERNAL_FILE_SERVER_ERROR"})
MAX_VARIANTS = 250  # Shopify's cap on an input list (docs/shopify-notes.md)
# A result or export file larger than this is refused: an export holds the whole shop's
# products and variants (~150 bytes a line: 256 MiB is well over a million variants).
MAX_DOWNLOAD = 256 * 2**20


@dataclass
class Pacing:
    poll_interval: float = 2.0  # between two reads of a running operation
    max_poll: float = 60.0  # then the item goes back to the queue
    busy_retry: float = 30.0  # retry_after when another bulk mutation runs


DEFAULT_PACING = Pacing()


def bulk_products(
    connector: ShopifyConnector,
    products: list[ChannelProduct],
    remote_ids: Mapping[str, str],
    key: str,
    pacing: Pacing | None = None,
) -> list[ProductResult]:
    from stockyard.connectors.shopify import _slug, bulk_export

    refused: dict[str, ProductResult] = {}
    for product in products:
        if len(product.variants) > MAX_VARIANTS or not product.variants:
            why = f"{len(product.variants)} variants: the bulk path takes 1 to {MAX_VARIANTS}"
            refused[product.code] = ProductResult(product.code, error=PermanentError(why))
    candidates = [p for p in products if p.code not in refused]
    if not candidates:
        return [refused[p.code] for p in products]
    runner = BulkRunner(connector, pacing or DEFAULT_PACING)
    run_key = key + json.dumps([p.code for p in candidates])
    sent: list[ChannelProduct] = []
    body: list[dict[str, Any]] = []
    kept: dict[str, Mapping[str, str]] = {}  # code -> the shop's variants its line names

    def lines() -> list[dict[str, Any]]:
        """Called only when the chunk's operation starts (not when it is resumed)."""
        index = bulk_export.shop_index(runner, run_key)
        placed = bulk_export.place(candidates, remote_ids, index, _slug)
        for product in candidates:
            where = placed[product.code]
            try:
                if where.why:
                    raise PermanentError(
                        f"shopify: {product.code} not written in bulk: {where.why}"
                    )
                line = line_variables(connector, product, where.remote_id, where.variant_ids)
            except PermanentError as exc:  # e.g. a bad weight: this product alone fails
                refused[product.code] = ProductResult(product.code, error=exc)
                continue
            sent.append(product)
            body.append(line)
            kept[product.code] = where.variant_ids
        return body

    answers = runner.run(lines, run_key)
    if sent:  # started now: the answers' line numbers are the lines just sent
        results = {p.code: _result(p, answers.get(n)) for n, p in enumerate(sent)}
    else:  # resumed: which product a line was is told by the SKUs it set
        found = _by_sku(candidates, answers)
        results = {p.code: _result(p, found.get(p.code)) for p in candidates}
    results = {
        p.code: _without(results[p.code], _unsent(connector, p, kept.get(p.code) if sent else None))
        for p in candidates
        if p.code in results
    }
    return [refused.get(p.code) or results[p.code] for p in products]


def _by_sku(products: list[ChannelProduct], answers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    code_of = {v.sku: p.code for p in products for v in p.variants}
    found: dict[str, Any] = {}
    for answer in answers.values():
        payload = (answer.get("data") or {}).get("productSet") or {}
        nodes = ((payload.get("product") or {}).get("variants") or {}).get("nodes") or []
        code = next((code_of[n["sku"]] for n in nodes if n.get("sku") in code_of), None)
        if code is not None:
            found[code] = answer
    return found


def line_variables(
    connector: ShopifyConnector,
    product: ChannelProduct,
    remote_id: str | None,
    variant_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """productSet's variables for one product: Stockyard owns the whole product here, so
    every variant is listed (productSet deletes the ones it is not given); the shop's
    variants of the same SKU are named by id, so they are updated, never made again. A new
    product is named by its handle, known free from the export, so a line run twice sets
    it again instead of making a second one."""
    from stockyard.connectors.shopify import _slug

    variants = connector._with_options(product.variants)
    options: dict[str, list[str]] = {}
    for v in variants:
        for name, value in v.fields["options"].items():
            options.setdefault(name, [])
            if value not in options[name]:
                options[name].append(value)
    handle = _slug(product.code)
    ids = variant_ids or {}
    body = connector._product_fields(product) | {
        "productOptions": [
            {"name": n, "values": [{"name": v} for v in vs]} for n, vs in options.items()
        ],
        "variants": [_variant(connector, v, ids.get(v.sku)) for v in variants],
    }
    if remote_id is None:
        body |= {"handle": handle, "status": "ACTIVE"}
        return {"identifier": {"handle": handle}, "input": body}
    return {"identifier": {"id": remote_id}, "input": body}


def _variant(
    connector: ShopifyConnector, v: ChannelVariant, remote_id: str | None
) -> dict[str, Any]:
    """The per-product path's own variant input (price, compare-at, barcode, SKU, tracked,
    weight in the connection's unit), so a bulk line sends what add_product would. Stock
    goes in the line only for a variant the line creates: productSet may set quantities of
    an existing variant only where it is stocked already (schema, ProductVariantSetInput),
    which the export does not tell, and would set them without the compare-and-set that
    keeps a sale made meanwhile; those variants are reported unsent instead (`_unsent`)."""
    body: dict[str, Any] = {"id": remote_id} if remote_id else {}
    body |= connector._variant_input(v)
    body["optionValues"] = [{"optionName": n, "name": x} for n, x in v.fields["options"].items()]
    levels = connector._stock(v) if remote_id is None else {}
    if levels:
        body["inventoryQuantities"] = [
            {"locationId": location, "name": "available", "quantity": quantity}
            for location, quantity in levels.items()
        ]
    return body


def _unsent(
    connector: ShopifyConnector, product: ChannelProduct, variant_ids: Mapping[str, str] | None
) -> set[str]:
    """The SKUs whose stock the line leaves out (existing variants with stock to place);
    without `variant_ids` (a resumed operation: which were existing is not known) every
    SKU with stock to place."""
    return {
        v.sku
        for v in product.variants
        if connector._stock(v) and (variant_ids is None or v.sku in variant_ids)
    }


def _without(result: ProductResult, skus: set[str]) -> ProductResult:
    """The result with `skus` left out of its variants: the flow must not record them as
    sent (docs/shopify-notes.md, "Bulk operations", what a line holds)."""
    if not skus or not result.ok:
        return result
    kept = {sku: gid for sku, gid in result.variants.items() if sku not in skus}
    return replace(result, variants=kept)


def _result(product: ChannelProduct, answer: dict[str, Any] | None) -> ProductResult:
    code = product.code
    if answer is None:
        missing = PermanentError("shopify: the bulk operation gave no result")
        return ProductResult(code, error=missing)
    payload = (answer.get("data") or {}).get("productSet")
    if not isinstance(payload, dict):
        messages = "; ".join(str(e.get("message")) for e in answer.get("errors") or [])
        return ProductResult(code, error=PermanentError(f"shopify: {messages or 'no result'}"))
    errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
    made = payload.get("product") or {}
    if errors or not made.get("id"):
        detail = "; ".join(
            f"{'.'.join(e.get('field') or []) or '-'}: {e.get('message')}"
            + (f" ({e['code']})" if e.get("code") else "")
            for e in errors[:5]
        )
        return ProductResult(code, error=PermanentError(f"shopify: set {code}: {detail}"))
    nodes = (made.get("variants") or {}).get("nodes") or []
    return ProductResult(
        code, remote_id=str(made["id"]), variants={n["sku"]: n["id"] for n in nodes if n["sku"]}
    )


class BulkRunner:
    def __init__(
        self,
        connector: ShopifyConnector,
        pacing: Pacing,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = connector.api
        self.own_host = urlsplit(connector.config.base_url or f"https://{connector.config.shop}")
        self.timeout = connector.config.timeout
        self.pacing = pacing
        self.clock, self.sleep = clock, sleep

    def run(self, lines: Callable[[], list[dict[str, Any]]], key: str) -> dict[int, dict[str, Any]]:
        """The answers by line number (0-based) of running BULK_PRODUCT_SET_LINKED over
        `lines()`; resumes this key's operation if an earlier attempt started one (then
        `lines` is not called)."""
        name = f"{OPERATION}_{hashlib.sha256(key.encode()).hexdigest()[:32]}"
        mutation = d.BULK_PRODUCT_SET_LINKED.replace(OPERATION, name, 1)
        operation = self._own_or_busy(name)
        if operation is None or operation["status"] in RESTARTABLE:
            body = lines()
            if not body:
                return {}
            operation = self._start(mutation, body, name)
        return self._results(self._wait(operation))

    # ---------------------------------------------------------------------- start

    def _own_or_busy(self, name: str) -> dict[str, Any] | None:
        nodes = self.api.query(d.BULK_MUTATIONS_RECENT)["bulkOperations"]["nodes"]
        own = next((n for n in nodes if f"mutation {name}(" in (n.get("query") or "")), None)
        if own is not None and own["status"] not in RESTARTABLE:
            return dict(own)
        if any(n["status"] in ACTIVE for n in nodes):
            raise TransientError(
                "shopify: another bulk mutation is running on the shop; one runs at a time",
                retry_after=self.pacing.busy_retry,
            )
        return own

    def _start(self, mutation: str, lines: list[dict[str, Any]], name: str) -> dict[str, Any]:
        body = "".join(json.dumps(v, separators=(",", ":")) + "\n" for v in lines).encode()
        filename = f"{name}.jsonl"
        staged = self.api.query(
            d.STAGED_UPLOADS_CREATE,
            {
                "input": [
                    {
                        "resource": "BULK_MUTATION_VARIABLES",
                        "filename": filename,
                        "mimeType": "text/jsonl",
                        "httpMethod": "POST",
                        "fileSize": str(len(body)),
                    }
                ]
            },
        )["stagedUploadsCreate"]
        if not staged or staged.get("userErrors") or not staged.get("stagedTargets"):
            raise PermanentError(f"shopify: staged upload refused: {_errors(staged)}")
        target = staged["stagedTargets"][0]
        params = {p["name"]: p["value"] for p in target.get("parameters") or []}
        self._upload(str(target["url"]), params, filename, body)
        run = self.api.query(
            d.BULK_RUN_MUTATION,
            {"mutation": mutation, "path": params.get("key", ""), "client": name},
        )["bulkOperationRunMutation"]
        errors = [e for e in (run or {}).get("userErrors") or [] if isinstance(e, dict)]
        if errors:
            raise _run_refused(errors, self.pacing.busy_retry)
        if not run or not run.get("bulkOperation"):
            raise PermanentError("shopify: bulkOperationRunMutation answered no operation")
        return dict(run["bulkOperation"])

    def _upload(self, url: str, params: dict[str, str], filename: str, body: bytes) -> None:
        self._check_host(url, UPLOAD_HOSTS, "staged upload")
        try:
            with outbound.client(timeout=self.timeout) as http:
                # The file goes last: storage services read the form fields before it.
                answer = http.post(url, data=params, files={"file": (filename, body, "text/jsonl")})
        except httpx.TransportError as exc:
            raise TransientError(f"shopify: staged upload failed ({type(exc).__name__})") from None
        if answer.status_code >= 500 or answer.status_code in (408, 429):
            raise TransientError(f"shopify: staged upload answered HTTP {answer.status_code}")
        if answer.status_code >= 300:
            raise PermanentError(f"shopify: staged upload answered HTTP {answer.status_code}")

    # ------------------------------------------------------------------ poll, read

    def _wait(self, operation: dict[str, Any]) -> dict[str, Any]:
        deadline = self.clock() + self.pacing.max_poll
        read = False  # one read per attempt at least: an attempt always moves a step on
        while operation.get("status") in ACTIVE or "url" not in operation:
            if operation.get("status") in ACTIVE and read and self.clock() >= deadline:
                raise TransientError(
                    f"shopify: bulk operation {operation['id']} still {operation['status']};"
                    " the next attempt goes on polling it",
                    retry_after=self.pacing.poll_interval * 5,
                )
            if operation.get("status") in ACTIVE:
                self.sleep(self.pacing.poll_interval)
            found = self.api.query(d.BULK_OPERATION, {"id": operation["id"]})["bulkOperation"]
            if found is None:
                raise TransientError(f"shopify: bulk operation {operation['id']} is not found")
            operation, read = dict(found), True
        return operation

    def _results(self, operation: dict[str, Any]) -> dict[int, dict[str, Any]]:
        """Every line's answer; a failed operation's partial data, if any (the lines it
        lacks get no answer, so their products become items of their own)."""
        url = operation.get("url") or operation.get("partialDataUrl")
        if not url:
            return {}
        found: dict[int, dict[str, Any]] = {}
        for row in self._rows(str(url)):
            if isinstance(row.get("__lineNumber"), int):
                found[row["__lineNumber"]] = row
        return found

    def _rows(self, url: str) -> Iterator[dict[str, Any]]:
        """The JSON objects of a result or export file, read as it streams in; a file
        past MAX_DOWNLOAD is refused rather than held (an export grows with the shop)."""
        self._check_host(url, RESULT_HOSTS, "bulk result")
        try:
            # No access token here: the file lives on a storage service, not the shop.
            with outbound.client(timeout=self.timeout) as http, http.stream("GET", url) as got:
                if got.status_code != 200:
                    status = got.status_code
                    raise TransientError(f"shopify: bulk result download answered HTTP {status}")
                yield from _json_lines(got.iter_bytes())
        except httpx.TransportError as exc:
            failed = type(exc).__name__
            raise TransientError(f"shopify: bulk result download failed ({failed})") from None

    def _check_host(self, url: str, hosts: frozenset[str], what: str) -> None:
        parts = urlsplit(url)
        own = (parts.scheme, parts.netloc) == (self.own_host.scheme, self.own_host.netloc)
        if not own and not (parts.scheme == "https" and parts.hostname in hosts):
            raise PermanentError(
                f"shopify: the {what} address is on {parts.hostname!r}, neither Shopify's"
                " storage nor the shop's own address: refused"
            )


def _json_lines(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    size, rest = 0, b""
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_DOWNLOAD:
            mib = MAX_DOWNLOAD // 2**20
            raise PermanentError(f"shopify: a bulk file is over {mib} MiB: not read")
        *whole, rest = (rest + chunk).split(b"\n")
        yield from _objects(whole)
    yield from _objects([rest])


def _objects(raws: list[bytes]) -> Iterator[dict[str, Any]]:
    for raw in raws:
        try:
            row = json.loads(raw) if raw.strip() else None
        except ValueError:
            continue
        if isinstance(row, dict):
            yield row


def _errors(payload: Any) -> str:
    errors = (payload or {}).get("userErrors") or []
    return "; ".join(str(e.get("message")) for e in errors[:3]) or "no target"


def _run_refused(errors: list[dict[str, Any]], busy_retry: float) -> HandlerError:
    codes = {e.get("code") for e in errors}
    text = "; ".join(f"{e.get('message')} ({e.get('code')})" for e in errors[:3])
    if codes & BUSY_CODES:
        return TransientError(f"shopify: bulk mutation not started: {text}", retry_after=busy_retry)
    return PermanentError(f"shopify: bulk mutation refused: {text}")
