"""Start the real Tryton and Vendure on 127.0.0.1 for the ERP-to-shop demo and tests.

Each system's database is made once from its pinned release and kept as a template under
.cache/ (Tryton's takes ~25 s to create, Vendure's ~5 s); every start copies the template
into a folder of its own, so runs never see each other's data.

    python -m systems.launch     # the demo: both systems, seeded, until Ctrl-C
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from stockyard.connectors.tryton.client import TrytonClient
from stockyard.connectors.vendure.client import VendureClient
from stockyard.errors import HandlerError
from stockyard.outbound import ALLOW_ENV

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
TRYTON_BIN = CACHE / "tryton" / "venv" / "bin"
VENDURE_DIR = ROOT / "systems" / "vendure"
TRYTON_DB = "shop"
TRYTON_ADMIN = ("admin", "admin")
VENDURE_ADMIN = ("superadmin", "superadmin")
# sale_price_list (with product_price_list) gives trade customers their prices;
# account_credit_limit their credit limit.
TRYTON_MODULES = ("sale", "stock", "product", "sale_price_list", "account_credit_limit")


class SystemError(RuntimeError):
    """A system could not be installed or started; the message says what to run."""


@dataclass
class Running:
    """One started system: its process, and how to start it again in place."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    url: str
    folder: Path
    ready: Callable[[str], bool]  # asks the system at `url` whether it answers
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def start(self, seconds: float = 90.0) -> Running:
        """Start the process and wait until the system answers."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise SystemError(f"{self.name} exited at start; its log ends:\n{tail}")
            try:
                if self.ready(self.url):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemError(f"{self.name} did not answer within {seconds:.0f} s (log: {self.log})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Stop it hard, as a crash or a pulled cable would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _fingerprint(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def _template(system: str, *inputs: Path) -> tuple[Path, Path | None]:
    """Where `system`'s template lives (named after what it is made from), and an empty
    folder to build it in, or None when it exists already."""
    template = CACHE / system / f"template-{_fingerprint(*inputs)}.sqlite"
    if template.exists():
        return template, None
    for stale in (CACHE / system).glob("template-*.sqlite"):
        stale.unlink()
    folder = CACHE / system / "build"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return template, folder


def _snapshot(database: Path, target: Path) -> None:
    """Copy an SQLite database through SQLite: Tryton runs it in WAL mode, and a stopped
    server leaves its last writes in the -wal file, which a plain file copy would miss."""
    partial = target.with_suffix(".partial")
    with sqlite3.connect(database) as source, sqlite3.connect(partial) as copy:
        source.backup(copy)
    source.close()
    copy.close()
    partial.replace(target)


# ------------------------------------------------------------------------------- Tryton


def _tryton_conf(folder: Path, port: int) -> Path:
    conf = folder / "trytond.conf"
    conf.write_text(
        f"[database]\nuri = sqlite://\npath = {folder}\n\n[web]\nlisten = 127.0.0.1:{port}\n"
    )
    return conf


def _need(path: Path, script: str) -> None:
    if not path.exists():
        raise SystemError(f"{path} is missing: run `bash scripts/{script}` first")


def tryton_template() -> Path:
    """The seeded database file, made once per pinned release."""
    _need(TRYTON_BIN / "trytond", "install-tryton.sh")
    requirements = ROOT / "systems" / "tryton" / "requirements.txt"
    template, folder = _template("tryton", requirements, Path(__file__))
    if folder is None:
        return template
    (folder / f"{TRYTON_DB}.sqlite").touch()
    conf = _tryton_conf(folder, 0)
    password = folder / "password"
    password.write_text(TRYTON_ADMIN[1] + "\n")
    subprocess.run(
        [
            str(TRYTON_BIN / "trytond-admin"),
            "-c",
            str(conf),
            "-d",
            TRYTON_DB,
            "--all",
            "--activate-dependencies",
            "-u",
            *TRYTON_MODULES,
            "--email",
            "admin@example.com",
        ],
        check=True,
        env={**os.environ, "TRYTONPASSFILE": str(password)},
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    running = start_tryton(port, folder=folder, fresh=False)
    try:
        seed_tryton_company(tryton_client(running.url))
        # A new session: its context carries the company the first one created.
        seed_tryton_trade(tryton_client(running.url))
    finally:
        running.stop()
    _snapshot(folder / f"{TRYTON_DB}.sqlite", template)
    shutil.rmtree(folder, ignore_errors=True)
    return template


def start_tryton(port: int, folder: Path, fresh: bool = True) -> Running:
    """trytond on 127.0.0.1:`port` with its database in `folder` (a copy of the template
    when `fresh`, else what the folder holds: a restart)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fresh:
        shutil.copyfile(tryton_template(), folder / f"{TRYTON_DB}.sqlite")
    conf = _tryton_conf(folder, port)
    argv = [str(TRYTON_BIN / "trytond"), "-c", str(conf), "-d", TRYTON_DB]

    def ready(url: str) -> bool:
        return httpx.post(f"{url}/{TRYTON_DB}/rpc/", json={}, timeout=2).status_code < 500

    return Running("tryton", argv, folder, {}, f"http://127.0.0.1:{port}", folder, ready).start()


def tryton_client(url: str) -> TrytonClient:
    return TrytonClient(url, TRYTON_DB, *TRYTON_ADMIN)


def seed_tryton_company(client: TrytonClient) -> None:
    """A company in USD for the admin user; sales not invoiced (no chart of accounts)."""
    (usd,) = client.model(
        "currency.currency",
        "create",
        [
            {
                "name": "US Dollar",
                "code": "USD",
                "symbol": "$",
                "rounding": Decimal("0.01"),
                "digits": 2,
            }
        ],
    )
    (party,) = client.model("party.party", "create", [{"name": "Stockyard Demo Company"}])
    (company,) = client.model("company.company", "create", [{"party": party, "currency": usd}])
    client.model("res.user", "write", [1], {"companies": [["add", [company]]], "company": company})
    client.model(
        "sale.configuration",
        "write",
        [1],
        {"sale_invoice_method": "manual", "sale_shipment_method": "order"},
    )


@dataclass(frozen=True)
class TradeAccount:
    """A trade customer of the demo: a party whose code is its account number."""

    code: str
    name: str
    email: str
    phone: str
    credit_limit: Decimal
    contacts: tuple[tuple[str, str, str, str], ...]  # (name, email, phone, role)


TRADE_PRICE_LIST = "Trade"
TRADE_DISCOUNT = Decimal("0.8")  # the Trade list's formula: 20 % below the list price
TRADE_PAYMENT_TERM = "30 days net"
ACME = TradeAccount(
    code="T1001",
    name="Acme Trading",
    email="orders@acme-trading.example",
    phone="+44 20 7946 0001",
    credit_limit=Decimal("5000.00"),
    contacts=(("Jo Buyer", "jo@acme-trading.example", "+44 20 7946 0002", "buyer"),),
)


def seed_tryton_trade(client: TrytonClient) -> None:
    """The trade side: a price list "Trade" (a formula, so it needs no products), a
    payment term, and the trade customer Acme Trading on both with a credit limit."""
    (price_list,) = client.model(
        "product.price_list",
        "create",
        [
            {
                "name": TRADE_PRICE_LIST,
                "price": "list_price",
                "lines": [["create", [{"formula": f"list_price * {TRADE_DISCOUNT}"}]]],
            }
        ],
    )
    (term,) = client.model(
        "account.invoice.payment_term",
        "create",
        [
            {
                "name": TRADE_PAYMENT_TERM,
                "lines": [
                    [
                        "create",
                        [{"type": "remainder", "relativedeltas": [["create", [{"days": 30}]]]}],
                    ]
                ],
            }
        ],
    )
    add_trade_account(client, ACME, price_list, term)


def add_trade_account(
    client: TrytonClient, account: TradeAccount, price_list: int, payment_term: int | None
) -> int:
    """A party with `account.code`, `price_list` as its sale price list, its credit limit,
    an invoice address, its e-mail and phone, and its contacts (named contact mechanisms,
    the role as their comment). Returns the party's id."""
    mechanisms = [
        {"type": "email", "value": account.email},
        {"type": "phone", "value": account.phone},
    ]
    for name, email, phone, role in account.contacts:
        for kind, value in (("email", email), ("phone", phone)):
            mechanisms.append({"type": kind, "value": value, "name": name, "comment": role})
    address = {
        "street_unstructured": "1 Wharf Road",
        "postal_code": "N1 7GR",
        "city": "London",
        "invoice": True,
    }
    (party,) = client.model(
        "party.party",
        "create",
        [
            {
                "name": account.name,
                "code": account.code,
                "addresses": [["create", [address]]],
                "contact_mechanisms": [["create", mechanisms]],
            }
        ],
    )
    # Company-dependent values (MultiValue fields): written once the party exists.
    values: dict[str, Any] = {
        "sale_price_list": price_list,
        "credit_limit_amount": account.credit_limit,
    }
    if payment_term is not None:
        values["customer_payment_term"] = payment_term
    client.model("party.party", "write", [party], values)
    return int(party)


@dataclass(frozen=True)
class TrytonItem:
    """A product template of the demo: its variants as (code, stock)."""

    code: str
    name: str
    price: Decimal
    variants: tuple[tuple[str, int], ...]


DEMO_ITEMS = (
    TrytonItem("TEE", "Organic T-shirt", Decimal("19.90"), (("TEE-S", 5), ("TEE-M", 7))),
    TrytonItem("MUG", "Enamel mug", Decimal("12.50"), (("MUG", 12),)),
)


def seed_tryton_items(client: TrytonClient, items: tuple[TrytonItem, ...] = DEMO_ITEMS) -> None:
    """Create the templates, their variants and their stock (a done move from the
    supplier into the warehouse)."""
    unit = client.model("product.uom", "search", [("symbol", "=", "u")], 0, 1, None)[0]
    for item in items:
        # Tryton's product code is the template's code followed by the variant's suffix.
        suffixes = [{"suffix_code": code.removeprefix(item.code)} for code, _ in item.variants]
        client.model(
            "product.template",
            "create",
            [
                {
                    "name": item.name,
                    "code": item.code,
                    "type": "goods",
                    "default_uom": unit,
                    "list_price": item.price,
                    "salable": True,
                    "sale_uom": unit,
                    "products": [["create", suffixes]],
                }
            ],
        )
        for code, quantity in item.variants:
            receive_stock(client, code, quantity)


def _product_id(client: TrytonClient, code: str) -> int:
    return int(client.model("product.product", "search", [("code", "=", code)], 0, 1, None)[0])


def receive_stock(client: TrytonClient, code: str, quantity: int) -> None:
    """Goods in from a supplier: `quantity` more of product `code` in the warehouse."""
    product = _product_id(client, code)
    unit = client.model("product.product", "read", [product], ["default_uom"])[0]["default_uom"]
    (warehouse,) = client.model(
        "stock.location",
        "search_read",
        [("type", "=", "warehouse")],
        0,
        1,
        None,
        ["storage_location"],
    )
    supplier = client.model("stock.location", "search", [("type", "=", "supplier")], 0, 1, None)
    company = client.model("company.company", "search_read", [], 0, 1, None, ["currency"])[0]
    moves = client.model(
        "stock.move",
        "create",
        [
            {
                "product": product,
                "from_location": supplier[0],
                "to_location": warehouse["storage_location"],
                "quantity": float(quantity),
                "unit": unit,
                "unit_price": Decimal(0),
                "currency": company["currency"],
                "company": company["id"],
            }
        ],
    )
    client.model("stock.move", "do", moves)


def set_tryton_price(client: TrytonClient, template_code: str, price: Decimal) -> None:
    found = client.model("product.template", "search", [("code", "=", template_code)], 0, 1, None)
    client.model("product.template", "write", found, {"list_price": price})


def ship_tryton_sale(client: TrytonClient, sale_number: str, reference: str = "") -> int:
    """The warehouse's work on a sale: its customer shipment assigned, picked, packed and
    done (with `reference`, a tracking number, when given). Returns the shipment's id."""
    found = client.model(
        "sale.sale", "search_read", [("number", "=", sale_number)], 0, 1, None, ["shipments"]
    )
    if not found or not found[0]["shipments"]:
        raise SystemError(f"Tryton has no sale {sale_number!r} with a shipment")
    shipments = found[0]["shipments"]
    if reference:
        client.model("stock.shipment.out", "write", shipments, {"reference": reference})
    for step in ("assign_try", "pick", "pack", "do"):
        client.model("stock.shipment.out", step, shipments)
    return int(shipments[0])


# ------------------------------------------------------------------------------ Vendure


def vendure_template() -> Path:
    _need(VENDURE_DIR / "node_modules" / "@vendure" / "core", "install-vendure.sh")
    files = [VENDURE_DIR / n for n in ("package-lock.json", "config.js", "setup.js")]
    template, folder = _template("vendure", *files)
    if folder is None:
        return template
    subprocess.run(
        ["node", "setup.js"],
        cwd=VENDURE_DIR,
        env={**os.environ, "VENDURE_DATA": str(folder), "VENDURE_SETUP_PORT": str(free_port())},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    _snapshot(folder / "vendure.sqlite", template)
    shutil.rmtree(folder, ignore_errors=True)
    return template


def start_vendure(port: int, folder: Path, fresh: bool = True) -> Running:
    """Vendure on 127.0.0.1:`port` with its data in `folder` (a copy of the template when
    `fresh`, else what the folder holds: a restart)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fresh:
        shutil.copyfile(vendure_template(), folder / "vendure.sqlite")
    env = {"VENDURE_DATA": str(folder), "VENDURE_PORT": str(port)}

    def ready(url: str) -> bool:
        answer = httpx.post(f"{url}/shop-api", json={"query": "{ __typename }"}, timeout=2)
        return answer.status_code == 200

    url = f"http://127.0.0.1:{port}"
    return Running("vendure", ["node", "server.js"], VENDURE_DIR, env, url, folder, ready).start()


def vendure_admin(running_url: str) -> VendureClient:
    return VendureClient(f"{running_url}/admin-api", *VENDURE_ADMIN)


class VendureShopper:
    """A customer on the Shop API: a cart, a guest checkout and a payment that settles."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=f"{url}/shop-api", timeout=30)
        self._token: str | None = None

    def _call(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        answer = self._http.post("", json={"query": query, "variables": variables}, headers=headers)
        self._token = answer.headers.get("vendure-auth-token", self._token)
        body = answer.json()
        if body.get("errors"):
            raise SystemError(f"shop API: {body['errors'][0]['message']}")
        data: dict[str, Any] = body["data"]
        for value in data.values():
            if isinstance(value, dict) and "errorCode" in value:
                raise SystemError(f"shop API: {value['message']}")
        return data

    def place_order(self, lines: dict[str, int], email: str = "ana@example.com") -> str:
        """Buy `lines` ({variant id: quantity}); returns the order's code."""
        result = "... on Order { id code state } ... on ErrorResult { errorCode message }"
        for variant_id, quantity in lines.items():
            self._call(
                f"mutation($v: ID!, $q: Int!) {{ addItemToOrder(productVariantId: $v,"
                f" quantity: $q) {{ {result} }} }}",
                v=variant_id,
                q=quantity,
            )
        self._call(
            f"mutation($c: CreateCustomerInput!) {{ setCustomerForOrder(input: $c)"
            f" {{ {result} }} }}",
            c={"emailAddress": email, "firstName": "Ana", "lastName": "Lima"},
        )
        self._call(
            f"mutation($a: CreateAddressInput!) {{ setOrderShippingAddress(input: $a)"
            f" {{ {result} }} }}",
            a={
                "fullName": "Ana Lima",
                "streetLine1": "Torstr. 1",
                "city": "Berlin",
                "postalCode": "10119",
                "countryCode": "DE",
            },
        )
        methods = self._call("{ eligibleShippingMethods { id } }")["eligibleShippingMethods"]
        self._call(
            f"mutation($m: [ID!]!) {{ setOrderShippingMethod(shippingMethodId: $m)"
            f" {{ {result} }} }}",
            m=[methods[0]["id"]],
        )
        self._call(
            f'mutation {{ transitionOrderToState(state: "ArrangingPayment") {{ {result} }} }}'
        )
        payment = self._call("{ eligiblePaymentMethods { code } }")["eligiblePaymentMethods"]
        placed = self._call(
            f"mutation($p: PaymentInput!) {{ addPaymentToOrder(input: $p) {{ {result} }} }}",
            p={"method": payment[0]["code"], "metadata": {}},
        )["addPaymentToOrder"]
        self._http.close()
        return str(placed["code"])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------- demo

DEMO = CACHE / "demo"
DEMO_PORTS = {"stockyard": 8000, "tryton": 8100, "vendure": 3100}


def _demo_stockyard(url: str, tryton: Running, vendure: Running) -> None:
    """A client with Tryton as its source and warehouse and Vendure as its shop, and the
    demo login."""
    from stockyard.accounts import Accounts, Principal
    from stockyard.application import Application
    from stockyard.demo import DEMO_EMAIL, DEMO_PASSWORD
    from stockyard.engine import Request

    application = Application.init(url)
    queue, service = application.queue, application.service
    admin = Principal("demo", platform_admin=True)
    client = service.create_client(admin, "ERP to shop")
    erp = {"url": tryton.url, "database": TRYTON_DB, "username": TRYTON_ADMIN[0]}
    secret = {"password": TRYTON_ADMIN[1]}
    shop = {"url": f"{vendure.url}/admin-api", "username": VENDURE_ADMIN[0], "poll_orders_every": 5}
    for kind, connector, name, settings, secrets in (
        ("source", "tryton", "Tryton", {**erp, "poll_products_every": 5}, secret),
        ("fulfillment", "tryton", "Tryton shipping", {**erp, "poll_fulfillments_every": 5}, secret),
        ("channel", "vendure", "Vendure", shop, {"password": VENDURE_ADMIN[1]}),
    ):
        made = service.create_connection(admin, client.id, kind, connector, name, settings, secrets)
        if kind == "channel":  # a new channel turns active after its first full sync
            service.enqueue(admin, client.id, [Request("init_channel", {}, made.id)])
    accounts = Accounts(queue.db)
    if accounts.user_by_email(DEMO_EMAIL) is None:
        accounts.create_user(DEMO_EMAIL, DEMO_PASSWORD, platform_admin=True)


def allow_local_systems() -> None:
    """Tryton and Vendure listen on 127.0.0.1, which Stockyard refuses to reach unless the
    deployment allows it (stockyard.outbound): the demo and the benchmarks allow it."""
    os.environ.setdefault(ALLOW_ENV, "127.0.0.1,::1,localhost")


def demo(fresh: bool) -> None:
    """Both systems and Stockyard between them, until Ctrl-C. The data stays in
    .cache/demo/ for the next run unless `fresh`."""
    from stockyard.demo import DEMO_EMAIL, DEMO_PASSWORD
    from stockyard.serve import ServeOptions, serve
    from stockyard.web.settings import ApiSettings

    new = fresh or not (DEMO / "stockyard.db").exists()
    if new:
        shutil.rmtree(DEMO, ignore_errors=True)
    print("starting Tryton and Vendure (the first run builds their databases: ~40 s)")
    tryton = start_tryton(DEMO_PORTS["tryton"], DEMO / "tryton", fresh=new)
    running = [tryton]
    try:
        vendure = start_vendure(DEMO_PORTS["vendure"], DEMO / "vendure", fresh=new)
        running.append(vendure)
        url = f"sqlite:///{DEMO / 'stockyard.db'}"
        if new:
            seed_tryton_items(tryton_client(tryton.url))
            _demo_stockyard(url, tryton, vendure)
        port = DEMO_PORTS["stockyard"]
        print(
            f"\nTryton (JSON-RPC)  {tryton.url}/{TRYTON_DB}/rpc/  admin / admin\n"
            f"Vendure Admin API  {vendure.url}/admin-api  superadmin / superadmin\n"
            f"Stockyard console  http://127.0.0.1:{port}/console  {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            "\nIn another terminal:\n"
            "  .venv/bin/python -m systems.launch price TEE 24.00   # a new price in Tryton\n"
            "  .venv/bin/python -m systems.launch order MUG 2       # a customer buys in Vendure\n"
            "  .venv/bin/python -m systems.launch ship 1            # Tryton ships sale 1\n"
        )
        serve(ServeOptions(url, "127.0.0.1", port, True, api=ApiSettings()))
    finally:
        for system in running:
            system.stop()


def _order(sku: str, quantity: int) -> str:
    admin = vendure_admin(f"http://127.0.0.1:{DEMO_PORTS['vendure']}")
    data = admin.query(
        "query($s: String!) { productVariants(options: {filter: {sku: {eq: $s}}}) {"
        " items { id } } }",
        {"s": sku},
    )
    items = data["productVariants"]["items"]
    if not items:
        raise SystemError(f"Vendure has no variant with SKU {sku!r} (yet)")
    shopper = VendureShopper(f"http://127.0.0.1:{DEMO_PORTS['vendure']}")
    return shopper.place_order({items[0]["id"]: quantity})


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m systems.launch", description=__doc__)
    parser.add_argument("--fresh", action="store_true", help="start the demo from scratch")
    commands = parser.add_subparsers(dest="command")
    price = commands.add_parser("price", help="set a template's price in Tryton")
    price.add_argument("code")
    price.add_argument("amount", type=Decimal)
    order = commands.add_parser("order", help="buy a variant in Vendure")
    order.add_argument("sku")
    order.add_argument("quantity", type=int, nargs="?", default=1)
    ship = commands.add_parser("ship", help="ship a Tryton sale (by its number)")
    ship.add_argument("sale")
    args = parser.parse_args(argv)
    allow_local_systems()
    erp_url = f"http://127.0.0.1:{DEMO_PORTS['tryton']}"
    try:
        if args.command == "price":
            set_tryton_price(tryton_client(erp_url), args.code, args.amount)
            print(f"{args.code} now costs {args.amount} in Tryton")
        elif args.command == "order":
            print(f"order {_order(args.sku, args.quantity)} placed in Vendure")
        elif args.command == "ship":
            ship_tryton_sale(tryton_client(erp_url), args.sale, reference=f"TRACK-{args.sale}")
            print(f"sale {args.sale} shipped in Tryton")
        else:
            demo(args.fresh)
    except (SystemError, HandlerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
