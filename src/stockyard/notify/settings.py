"""How notifications are sent: SMTP, the console's address for links, grouping windows.
Read from the environment (docs/notifications.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from stockyard.errors import Misconfigured

Security = Literal["none", "starttls", "tls"]
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


@dataclass(frozen=True, slots=True)
class NotifySettings:
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Security = "none"
    smtp_user: str | None = None
    # Out of the repr: these settings travel in the worker's periodic jobs, whose failures
    # are logged with them.
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "Stockyard <stockyard@localhost>"
    smtp_timeout: float = 20.0
    smtp_ca_file: str | None = None  # a private CA to trust for STARTTLS / TLS
    public_url: str = "http://127.0.0.1:8000"
    digest_window: float = 60.0  # non-blocking failures of one kind within it: one digest
    summary_hour: int | None = 7  # UTC hour of the daily summary; None: no summary
    webhook_timeout: float = 10.0

    @property
    def port(self) -> int:
        return self.smtp_port or DEFAULT_PORTS[self.smtp_security]

    def item_url(self, client_id: int, item_id: int) -> str:
        return f"{self.public_url.rstrip('/')}/console/clients/{client_id}/items/{item_id}"

    @classmethod
    def from_env(cls) -> NotifySettings:
        env = os.environ
        security = env.get("STOCKYARD_SMTP_SECURITY", "none")
        if security not in DEFAULT_PORTS:
            raise Misconfigured("STOCKYARD_SMTP_SECURITY must be none, starttls or tls")
        default = cls()
        try:
            return cls(
                smtp_host=env.get("STOCKYARD_SMTP_HOST") or None,
                smtp_port=int(env["STOCKYARD_SMTP_PORT"])
                if env.get("STOCKYARD_SMTP_PORT")
                else None,
                smtp_security=security,  # type: ignore[arg-type]
                smtp_user=env.get("STOCKYARD_SMTP_USER") or None,
                smtp_password=env.get("STOCKYARD_SMTP_PASSWORD") or None,
                smtp_from=env.get("STOCKYARD_SMTP_FROM", default.smtp_from),
                smtp_ca_file=env.get("STOCKYARD_SMTP_CA_FILE") or None,
                public_url=env.get("STOCKYARD_PUBLIC_URL", default.public_url),
                digest_window=float(env.get("STOCKYARD_DIGEST_WINDOW", default.digest_window)),
                summary_hour=_hour(env.get("STOCKYARD_SUMMARY_HOUR", "7")),
            )
        except ValueError as exc:
            raise Misconfigured(f"notification settings: {exc}") from None


def _hour(text: str) -> int | None:
    if text.strip().lower() in ("", "off", "none"):
        return None
    hour = int(text)
    if not 0 <= hour <= 23:
        raise ValueError("STOCKYARD_SUMMARY_HOUR is an hour, 0 to 23, or off")
    return hour
