"""The handlers of `send_email` (SMTP) and `send_webhook` (a signed POST). Network trouble
and 4xx/5xx answers worth retrying are transient: the item retries with back-off."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

import httpx

from stockyard.connectors.http import classify
from stockyard.errors import PermanentError, TransientError
from stockyard.handlers import Context
from stockyard.notify.settings import NotifySettings
from stockyard.notify.subscriptions import Subscriptions
from stockyard.signing import sign


def _message(settings: NotifySettings, ctx: Context) -> EmailMessage:
    p = ctx.payload
    try:
        msg = EmailMessage()
        msg["From"] = settings.smtp_from
        msg["To"] = p["to"]
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


def send_email(settings: NotifySettings, ctx: Context) -> None:
    if not settings.smtp_host:
        raise PermanentError(
            "email is not configured: set STOCKYARD_SMTP_HOST (docs/notifications.md)"
        )
    msg = _message(settings, ctx)
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
    secret = subscriptions.secret(int(p["subscription_id"]))
    if secret is None:
        raise PermanentError(f"subscription {p['subscription_id']} was removed; nothing to send")
    body = json.dumps(p["body"], separators=(",", ":")).encode()
    # Signed now, not when queued: the timestamp must be fresh for the receiver.
    headers = {"content-type": "application/json", **sign(secret, p["message_id"], body)}
    try:
        response = httpx.post(
            p["url"], content=body, headers=headers, timeout=settings.webhook_timeout
        )
    except httpx.HTTPError as exc:
        raise TransientError(f"webhook {p['url']}: {exc}") from None
    error = classify(response, f"webhook {p['url']}")
    if error is not None:
        if response.status_code == 410:
            raise PermanentError(f"webhook {p['url']}: 410 Gone, the receiver stopped it")
        raise error
