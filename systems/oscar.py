"""Start the real django-oscar trade store (with django-oscar-api) on 127.0.0.1 for the tests.

Oscar runs from its own virtualenv (.cache/oscar/venv, `bash scripts/install-oscar.sh`) with
the small Django project in systems/oscar/ (docs/oscar-notes.md says what it adds). As with
Tryton and Vendure (systems/launch.py), the database is migrated and seeded once into a
template under .cache/oscar/ (~20 s) and every start copies it into a folder of its own
(the server then answers in ~2 s).

Nothing secret is fixed: Django's secret key is new for every process, and the API is
called with DRF tokens the launcher writes into the run's own database copy (`issue_token`),
for the staff user and for any customer a test signs in as; no user has a password.

The Django process runs in systems/oscar/ with only that folder on its path: this module's
name would otherwise shadow the `oscar` package.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from systems.launch import CACHE, ROOT, Running, SystemError, _need, _snapshot, _template

OSCAR_DIR = ROOT / "systems" / "oscar"
OSCAR_PYTHON = CACHE / "oscar" / "venv" / "bin" / "python"
OSCAR_ADMIN = "stockyard-admin"  # the staff user of the template (systems/oscar/seed.py)
DATABASE = "oscar.sqlite"


@dataclass
class OscarStore(Running):
    """A started Oscar: `token` is the staff user's API token for this run."""

    token: str = field(default="", repr=False)

    @property
    def database(self) -> Path:
        return self.folder / DATABASE

    def admin(self) -> httpx.Client:
        """An HTTP client for oscar-api's admin API and the stockyard app, as the staff user."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=30
        )

    def record_payment(self, number: str, amount: str, reference: str = "") -> None:
        """The merchant marks order `number` paid with `amount` (an invoice on account
        settled): Oscar's own PaymentEvent of type "Paid", written by our app's management
        command into this run's database while the server runs (neither oscar-api nor our
        app has an endpoint for it: payment reaches Oscar from the merchant, not from us)."""
        argv = ["-m", "django", "record_payment", number, amount, "--reference", reference]
        _django(self.database, *argv)


def _environment(database: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "trade_site.settings",
        "PYTHONPATH": str(OSCAR_DIR),
        "STOCKYARD_OSCAR_DB": str(database),
        "STOCKYARD_OSCAR_MEDIA": str(database.parent / "media"),
        "STOCKYARD_OSCAR_SECRET": secrets.token_urlsafe(50),
    }


def _django(database: Path, *argv: str) -> None:
    subprocess.run(
        [str(OSCAR_PYTHON), *argv],
        cwd=OSCAR_DIR,
        env={**os.environ, **_environment(database)},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def oscar_template() -> Path:
    """The migrated, seeded database file, made once per pinned release and project."""
    _need(OSCAR_PYTHON, "install-oscar.sh")
    app = OSCAR_DIR / "stockyard_trade"
    made_of = [
        "requirements.txt",
        "seed.py",
        "trade_site/settings.py",
        "stockyard_trade/models.py",
        "trade_partner/models.py",
    ]
    inputs = [OSCAR_DIR / name for name in made_of] + sorted(app.glob("migrations/0*.py"))
    template, folder = _template("oscar", *inputs, Path(__file__))
    if folder is None:
        return template
    database = folder / DATABASE
    _django(database, "-m", "django", "migrate", "--verbosity", "0")
    _django(database, "seed.py")
    _snapshot(database, template)
    shutil.rmtree(folder, ignore_errors=True)
    return template


def issue_token(database: Path, username: str) -> str:
    """A new DRF token for `username` in Oscar's `database` (its older ones end), so a test or
    the connector can call the API as that user. Works on a running store's database."""
    key = secrets.token_hex(20)
    with sqlite3.connect(database, timeout=20) as db:
        found = db.execute("SELECT id FROM auth_user WHERE username = ?", (username,)).fetchone()
        if found is None:
            raise SystemError(f"Oscar has no user {username!r}")
        db.execute("DELETE FROM authtoken_token WHERE user_id = ?", (found[0],))
        db.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (?, ?, ?)",
            (key, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), found[0]),
        )
    db.close()
    return key


def start_oscar(port: int, folder: Path, fresh: bool = True) -> OscarStore:
    """Oscar on 127.0.0.1:`port` with its database in `folder` (a copy of the template when
    `fresh`, else what the folder holds: a restart). Stop it with `.stop()`."""
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / DATABASE
    if fresh:
        shutil.copyfile(oscar_template(), database)
    token = issue_token(database, OSCAR_ADMIN)
    argv = [str(OSCAR_PYTHON), "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"]

    def ready(url: str) -> bool:
        return httpx.get(f"{url}/api/", timeout=2).status_code == 200

    url = f"http://127.0.0.1:{port}"
    store = OscarStore("oscar", argv, OSCAR_DIR, _environment(database), url, folder, ready)
    store.token = token
    store.start()
    return store


class OscarShopper:
    """A signed-in customer on oscar-api's shop API: a basket and a checkout (an order on
    account: oscar-api places it without a payment)."""

    def __init__(self, url: str, token: str) -> None:
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Token {token}"}, timeout=30
        )

    def _call(self, method: str, path: str, **body: Any) -> Any:
        answer = self._http.request(method, path, json=body or None)
        if answer.status_code >= 400:
            raise SystemError(f"Oscar {method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json()

    def place_order(self, lines: dict[int, int], address: dict[str, str]) -> str:
        """Buy `lines` ({product id: quantity}), shipped to `address` (Oscar's address fields,
        `country` an ISO code); returns the order's number."""
        url = str(self._http.base_url).rstrip("/")
        for product, quantity in lines.items():
            self._call(
                "POST",
                "/api/basket/add-product/",
                url=f"{url}/api/products/{product}/",
                quantity=quantity,
            )
        basket = self._call("GET", "/api/basket/")
        shipping = {**address, "country": f"{url}/api/countries/{address['country']}/"}
        order = self._call(
            "POST", "/api/checkout/", basket=basket["url"], shipping_address=shipping
        )
        self._http.close()
        return str(order["number"])
