"""The handlers of `send_email` (SMTP) and `send_webhook` (a signed POST). Network trouble
and 4xx/5xx answers worth retrying are transient: the item retries with back-off.

Where a message goes comes from the item's subscription, which must belong to the item's
own client, never from the payload: even a forged item could not mail or sign for anyone
else."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

import httpx

from stockyard import outbound
from stockyard.connectors.http import classify
from stockyard.db import DATABASE_ERRORS
from stockyard.engine.handlers import Context
from stockyard.errors import NotFound, PermanentError, StorageFull, TransientError
from stockyard.notify.settings import NotifySettings
from stockyard.notify.subscriptions import Subscription, Subscriptions
from stockyard.signing import sign

# The database cannot answer right now: worth retrying, not the item's fault.
_UNREADABLE: tuple[type[Exception], ...] = (*DATABASE_ERRORS, StorageFull)


def _subscription(subscriptions: Subscriptions, ctx: Context, kind: str) -> Subscription:
    """The item's subscription, of the item's client and of this kind, or a permanent
    failure: nothing is sent for a subscription removed since, or of another client."""
    p = ctx.payload
    wanted = p.get("subscription_id")
    try:
        if wanted is None and kind == "email":
            # Items queued before emails named their subscription: the client's own
            # subscriber with that address, if there still is one.
            mine = subscriptions.of_client(ctx.job.client_id)
            found = next((s for s in mine if s.kind == kind and s.target == p.get("to")), None)
            if found is None:
                raise NotFound("no subscription of this client for this address")
            return found
        sub = subscriptions.get(ctx.job.client_id, int(wanted))  # type: ignore[arg-type]
    except (NotFound, TypeError, ValueError):
        raise PermanentError(f"subscription {wanted} was removed; nothing to send") from None
    except _UNREADABLE as exc:
        raise TransientError(f"cannot read subscription {wanted}: {exc}") from None
    if sub.kind != kind:
        raise PermanentError(f"subscription {sub.id} is not an {kind} subscription")
    return sub


def _message(settings: NotifySettings, ctx: Context, to: str) -> EmailMessage:
    p = ctx.payload
    try:
        msg = EmailMessage()
        msg["From"] = settings.smtp_from
        msg["To"] = to
        msg["Subject"] = p["subject"]
        msg["Message-ID"] = make_msgid("stockyard")
        msg["X-Stockyard-Item"] = str(ctx.job.id)
        msg.set_content(p["text"])
        if p.get("html"):
            msg.add_alternative(p["html"], subtype="html")
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"invalid email payload: {exc}") from None
    return msg


def _tls(settings: NotifySettings) -> ssl.SSLContext:
    """Certificates are always verified: against the system's CAs, or a private one."""
    return ssl.create_default_context(cafile=settings.smtp_ca_file)


def send_email(settings: NotifySettings, subscriptions: Subscriptions, ctx: Context) -> None:
    if not settings.smtp_host:
        raise PermanentError(
            "email is not configured: set STOCKYARD_SMTP_HOST (docs/notifications.md)"
        )
    msg = _message(settings, ctx, _subscription(subscriptions, ctx, "email").target)
    where = f"SMTP {settings.smtp_host}:{settings.port}"
    try:
        if settings.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.port,
                timeout=settings.smtp_timeout,
                context=_tls(settings),
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.port, timeout=settings.smtp_timeout)
        with smtp:
            if settings.smtp_security == "starttls":
                smtp.starttls(context=_tls(settings))
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(f"{where} refused {msg['To']}: {exc.recipients}") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentError(f"{where}: login refused ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        error = PermanentError if 500 <= exc.smtp_code < 600 else TransientError
        raise error(f"{where}: {exc.smtp_code} {exc.smtp_error!r}") from None
    except ssl.SSLError as exc:
        raise PermanentError(f"{where}: TLS failed ({exc}); see STOCKYARD_SMTP_CA_FILE") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientError(f"{where} unreachable: {exc}") from None


def send_webhook(settings: NotifySettings, subscriptions: Subscriptions, ctx: Context) -> None:
    p = ctx.payload
    sub = _subscription(subscriptions, ctx, "webhook")
    url = sub.target  # the subscription's own address, whatever the payload says
    secret = subscriptions.secret(sub.id)
    if secret is None:
        raise PermanentError(f"subscription {sub.id} has no signing secret; nothing to send")
    try:
        body = json.dumps(p["body"], separators=(",", ":"), allow_nan=False).encode()
        message_id = str(p["message_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"invalid webhook payload: {exc}") from None
    # Signed now, not when queued: the timestamp must be fresh for the receiver.
    headers = {"content-type": "application/json", **sign(secret, message_id, body)}
    where = _webhook_name(sub)
    try:
        # Through the outbound check: a subscription must not aim inside the network.
        response = outbound.post(
            url, content=body, headers=headers, timeout=settings.webhook_timeout
        )
    except httpx.HTTPError as exc:
        reason = str(exc).replace(url, "…") or type(exc).__name__
        raise TransientError(f"{where}: {reason}") from None
    error = classify(response, where)
    if error is not None:
        if response.status_code == 410:
            raise PermanentError(f"{where}: 410 Gone, the receiver stopped it")
        raise error


def _webhook_name(sub: Subscription) -> str:
    """How errors name a webhook: its host only. Receivers often put their token in the
    path or query, and item errors are shown to read-only users, who may not see the
    subscription itself."""
    host = httpx.URL(sub.target).host or "?"
    return f"webhook subscription {sub.id} ({host})"
