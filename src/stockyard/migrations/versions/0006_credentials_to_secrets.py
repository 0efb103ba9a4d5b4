"""Credentials out of the `http` connector's plain settings: headers that carry one
(Authorization, Cookie, X-Api-Key, anything naming a token, secret, password, api key,
auth ...) move from `settings.headers` into the connection's sealed secrets, as
`auth_headers`. Settings are stored in clear and shown to read-only users; secrets are
sealed and write-only.

Sealing needs the deployment's key (stockyard.sealing): on SQLite the key file beside the
database (made if missing, as the first saved secret would), otherwise
STOCKYARD_SECRET_KEY or STOCKYARD_KEY_FILE. When there is something to move and no key,
the upgrade stops with a message saying so and changes nothing: leaving the credential in
clear, or dropping it, would each be worse than asking for the key. A database without
such headers upgrades without a key.

Downgrade leaves the moved headers sealed: writing credentials back in clear is not done
automatically.

Revision ID: 0006
Revises: 0005
"""

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

from stockyard.errors import Misconfigured
from stockyard.sealing import Sealer

revision = "0006"
down_revision = "0005"

# Frozen here: what this upgrade moved must not change when the live check evolves.
_CREDENTIAL = re.compile(
    r"auth|cookie|token|secret|passw|pwd|api[-_]?key|credential|private[-_]?key|signature",
    re.IGNORECASE,
)


def _split(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings without credential headers, and those headers."""
    headers = settings.get("headers")
    if not isinstance(headers, dict):
        return settings, {}
    moved = {k: str(v) for k, v in headers.items() if _CREDENTIAL.search(str(k))}
    if not moved:
        return settings, {}
    kept = {k: v for k, v in headers.items() if k not in moved}
    rest = {k: v for k, v in settings.items() if k != "headers"}
    return (rest | {"headers": kept} if kept else rest), moved


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, settings, secrets FROM connections WHERE connector = 'http'")
    ).fetchall()
    changes = []
    for conn_id, settings_text, sealed in rows:
        settings, moved = _split(json.loads(settings_text or "{}"))
        if moved:
            changes.append((conn_id, settings, moved, sealed))
    if not changes:
        return
    sealer = _sealer(bind, [c[0] for c in changes])
    for conn_id, settings, moved, sealed in changes:
        secrets = sealer.open(sealed)
        current = secrets.get("auth_headers")
        # A secret set on purpose wins over a header found in the settings.
        secrets["auth_headers"] = moved | (current if isinstance(current, dict) else {})
        bind.execute(
            sa.text(
                "UPDATE connections SET settings = :settings, secrets = :secrets WHERE id = :id"
            ),
            {"settings": json.dumps(settings), "secrets": sealer.seal(secrets), "id": conn_id},
        )


def _sealer(bind: Any, ids: list[int]) -> Sealer:
    url = bind.engine.url.render_as_string(hide_password=False)
    try:
        return Sealer.for_database(url)
    except Misconfigured as exc:
        raise Misconfigured(
            f"upgrading needs the key of connection secrets: http connections"
            f" {', '.join(map(str, ids))} hold credentials in their settings' headers, which"
            f" move into sealed secrets. {exc}. The credentials were left where they are; run"
            " `stockyard init` again with the key set."
        ) from None


def downgrade() -> None:
    pass
