"""Who may do what: users (argon2 password hashes) with a role per client, API keys per
client (shown once, kept as SHA-256 hashes), and login sessions.

Roles rank read-only < operator < administrator; a platform administrator holds the
administrator role on every client.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from stockyard.db import Database
from stockyard.errors import Conflict, InvalidInput, NotFound, Unauthenticated

ROLES: tuple[str, ...] = ("read-only", "operator", "administrator")
RANK = {role: rank for rank, role in enumerate(ROLES)}
KEY_PREFIX = "sy_key_"
SESSION_PREFIX = "sy_session_"
SESSION_TTL = 12 * 3600.0
MIN_PASSWORD = 8
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as the service layer checks it."""

    actor: str  # what the audit trail records
    platform_admin: bool = False
    roles: Mapping[int, str] = field(default_factory=dict)
    user_id: int | None = None
    key_id: int | None = None

    def role(self, client_id: int) -> str | None:
        return "administrator" if self.platform_admin else self.roles.get(client_id)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    platform_admin: bool


@dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    email: str
    role: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    client_id: int
    name: str
    role: str
    prefix: str
    created_at: float
    created_by: str
    revoked_at: float | None


def check_role(role: str) -> str:
    if role not in RANK:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    return role


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, db: Database, hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.hasher = hasher or PasswordHasher()

    # ------------------------------------------------------------------------------ users

    def create_user(self, email: str, password: str, platform_admin: bool = False) -> User:
        email = email.strip().lower()
        if not _EMAIL.match(email):
            raise InvalidInput("email: not an email address")
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
        with self.db.write() as cur:
            row = cur.execute(
                "INSERT INTO users (email, password_hash, platform_admin, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (email) DO NOTHING RETURNING id",
                (email, self.hasher.hash(password), int(platform_admin), time.time()),
            ).fetchone()
        if row is None:
            raise Conflict(f"a user with email {email} exists")
        return User(int(row[0]), email, platform_admin)

    def user_by_email(self, email: str) -> User | None:
        row = (
            self.db.connection()
            .execute(
                "SELECT id, email, platform_admin FROM users WHERE email = ?",
                (email.strip().lower(),),
            )
            .fetchone()
        )
        return None if row is None else User(int(row[0]), row[1], bool(row[2]))

    def set_password(self, user_id: int, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
        with self.db.write() as cur:
            cur.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                (self.hasher.hash(password), user_id),
            )
            # A new password ends every session opened with the old one.
            cur.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    # ------------------------------------------------------------------------ memberships

    def set_role(self, user_id: int, client_id: int, role: str) -> None:
        check_role(role)
        with self.db.write() as cur:
            cur.execute(
                "INSERT INTO memberships (user_id, client_id, role) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, client_id) DO UPDATE SET role = excluded.role",
                (user_id, client_id, role),
            )

    def remove_member(self, client_id: int, user_id: int) -> None:
        with self.db.write() as cur:
            cur.execute(
                "DELETE FROM memberships WHERE client_id = ? AND user_id = ?",
                (client_id, user_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no member {user_id}")

    def members(self, client_id: int) -> list[Member]:
        rows = (
            self.db.connection()
            .execute(
                "SELECT u.id, u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id"
                " WHERE m.client_id = ? ORDER BY u.email",
                (client_id,),
            )
            .fetchall()
        )
        return [Member(int(r[0]), r[1], r[2]) for r in rows]

    # ---------------------------------------------------------------------------- sessions

    def login(self, email: str, password: str) -> str:
        row = (
            self.db.connection()
            .execute(
                "SELECT id, password_hash FROM users WHERE email = ?", (email.strip().lower(),)
            )
            .fetchone()
        )
        # An unknown email costs one hash too, so timing does not tell which emails exist.
        stored = row[1] if row else self.hasher.hash(secrets.token_hex(8))
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise Unauthenticated("wrong email or password") from None
        if row is None:
            raise Unauthenticated("wrong email or password")
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with self.db.write() as cur:
            cur.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (_digest(token), row[0], now, now + SESSION_TTL),
            )
            cur.execute("DELETE FROM sessions WHERE user_id = ? AND expires_at < ?", (row[0], now))
        return token

    def logout(self, token: str) -> None:
        with self.db.write() as cur:
            cur.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))

    # ---------------------------------------------------------------------------- API keys

    def create_key(
        self, client_id: int, name: str, role: str, created_by: str
    ) -> tuple[ApiKey, str]:
        """The key and its token; the token is shown this once and kept only as a hash."""
        check_role(role)
        name = name.strip()
        if not name:
            raise InvalidInput("name: a key needs a name (where it is used)")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with self.db.write() as cur:
            (key_id,) = cur.execute(
                "INSERT INTO api_keys (client_id, name, role, prefix, token_hash, created_at,"
                " created_by) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    client_id,
                    name,
                    role,
                    token[: len(KEY_PREFIX) + 6],
                    _digest(token),
                    now,
                    created_by,
                ),
            ).fetchone()
        return self.key(client_id, int(key_id)), token

    def key(self, client_id: int, key_id: int) -> ApiKey:
        row = (
            self.db.connection()
            .execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = ? AND client_id = ?",
                (key_id, client_id),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no API key {key_id}")
        return ApiKey(*row)

    def keys(self, client_id: int) -> list[ApiKey]:
        rows = (
            self.db.connection()
            .execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE client_id = ? ORDER BY id",
                (client_id,),
            )
            .fetchall()
        )
        return [ApiKey(*r) for r in rows]

    def revoke_key(self, client_id: int, key_id: int) -> ApiKey:
        with self.db.write() as cur:
            cur.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND client_id = ?"
                " AND revoked_at IS NULL",
                (time.time(), key_id, client_id),
            )
        key = self.key(client_id, key_id)
        return key

    # ------------------------------------------------------------------------- principals

    def principal(self, token: str) -> Principal:
        """The caller a bearer token stands for."""
        if token.startswith(KEY_PREFIX):
            return self._key_principal(token)
        if token.startswith(SESSION_PREFIX):
            return self._session_principal(token)
        raise Unauthenticated("unknown kind of token: send an API key or a session token")

    def _key_principal(self, token: str) -> Principal:
        row = (
            self.db.connection()
            .execute(
                "SELECT id, client_id, role, name FROM api_keys"
                " WHERE token_hash = ? AND revoked_at IS NULL",
                (_digest(token),),
            )
            .fetchone()
        )
        if row is None:
            raise Unauthenticated("unknown or revoked API key")
        return Principal(f"key:{row[0]} ({row[3]})", roles={int(row[1]): row[2]}, key_id=row[0])

    def _session_principal(self, token: str) -> Principal:
        conn = self.db.connection()
        row = conn.execute(
            "SELECT u.id, u.email, u.platform_admin FROM sessions s JOIN users u"
            " ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?",
            (_digest(token), time.time()),
        ).fetchone()
        if row is None:
            raise Unauthenticated("unknown or expired session: log in again")
        roles = conn.execute(
            "SELECT client_id, role FROM memberships WHERE user_id = ?", (row[0],)
        ).fetchall()
        return Principal(
            f"user:{row[1]}",
            platform_admin=bool(row[2]),
            roles={int(r[0]): r[1] for r in roles},
            user_id=int(row[0]),
        )


_KEY_COLUMNS = "id, client_id, name, role, prefix, created_at, created_by, revoked_at"
