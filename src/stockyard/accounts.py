"""Who may do what: users (argon2 password hashes) with a role per client, API keys per
client (shown once, kept as SHA-256 hashes), and login sessions.

Roles rank read-only < operator < administrator; a platform administrator holds the
administrator role on every client.

Accounts are shared by every client they are a member of, so a client's administrator
never sets or learns one's password: an account a client adds is created without one (a
platform administrator sets the first, the user changes it). Password hashing is bounded
(`HASH_SLOTS` at a time: each argon2 hash takes 64 MiB) and failed attempts are throttled
per account and address, per address, and per account from anywhere
(`stockyard.throttle.LoginThrottle`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from stockyard.db import Database, Row, Store, load_queries
from stockyard.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from stockyard.throttle import LoginThrottle

ROLES: tuple[str, ...] = ("read-only", "operator", "administrator")
RANK = {role: rank for rank, role in enumerate(ROLES)}
KEY_PREFIX = "sy_key_"
SESSION_PREFIX = "sy_session_"
SESSION_TTL = 12 * 3600.0
MIN_PASSWORD = 8
NO_PASSWORD = ""  # the stored hash of an account whose password is not set yet: none matches
HASH_SLOTS = max(1, min(4, os.cpu_count() or 1))
# User ids are drawn at random from above any sequential id: an id must not tell a client
# administrator whether the account it just added is new or was made long ago elsewhere.
_USER_IDS = (2**32, 2**53)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as the service layer checks it."""

    actor: str  # what the audit trail records
    platform_admin: bool = False
    roles: Mapping[int, str] = field(default_factory=dict)
    user_id: int | None = None
    key_id: int | None = None
    session: str | None = None  # the SHA-256 of the session token the caller came with

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


def _normal_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput("email: not an email address")
    return email


def _check_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"{field}: at least {MIN_PASSWORD} characters")


class Accounts(Store):
    queries = load_queries(__package__, "accounts.sql")

    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher | None = None,
        throttle: LoginThrottle | None = None,
        hash_slots: int = HASH_SLOTS,
    ) -> None:
        super().__init__(db)
        self.hasher = hasher or PasswordHasher()
        self.throttle = throttle or LoginThrottle()
        # Bounds memory (argon2 takes 64 MiB a hash) and CPU whoever calls: API, console, CLI.
        self._slots = threading.BoundedSemaphore(hash_slots)
        self._dummy: str | None = None

    # --------------------------------------------------------------------------- hashing

    def _hash(self, password: str) -> str:
        with self._slots:
            return self.hasher.hash(password)

    def _verify(self, stored: str, password: str) -> bool:
        """Exactly one argon2 verification whatever `stored` is (a real hash, an account
        without a password, an unknown email), so the time taken tells nothing."""
        real = stored != NO_PASSWORD
        target = stored if real else self._dummy_hash()
        with self._slots:
            try:
                return self.hasher.verify(target, password) and real
            except (VerificationError, InvalidHashError):
                return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:  # made once, with the same parameters as real ones
            self._dummy = self._hash(secrets.token_hex(16))
        return self._dummy

    # ------------------------------------------------------------------------------ users

    def create_user(self, email: str, password: str | None, platform_admin: bool = False) -> User:
        """A new account; without a password nobody can sign in to it until one is set."""
        email = _normal_email(email)
        if password is not None:
            _check_password(password)
        stored = NO_PASSWORD if password is None else self._hash(password)
        for _ in range(5):  # a random id meets a taken one about never; then draw again
            user_id = secrets.randbelow(_USER_IDS[1] - _USER_IDS[0]) + _USER_IDS[0]
            with self.db.write() as cur:
                row = self.one(
                    cur,
                    "insert_user",
                    id=user_id,
                    email=email,
                    password_hash=stored,
                    platform_admin=int(platform_admin),
                    now=time.time(),
                )
            if row is not None:
                return User(int(row["id"]), email, platform_admin)
            if self.user_by_email(email) is not None:
                raise Conflict(f"a user with email {email} exists")
        raise Conflict("could not draw a free user id; try again")

    def user_by_email(self, email: str) -> User | None:
        row = self.one(self.conn, "user_by_email", email=email.strip().lower())
        return None if row is None else _user(row)

    def set_password(self, user_id: int, password: str, keep_session: str | None = None) -> None:
        """A new password ends every session opened with the old one, but `keep_session`
        (the SHA-256 of the token of the session that changed it)."""
        _check_password(password)
        stored = self._hash(password)
        with self.db.write() as cur:
            self.execute(cur, "set_password_hash", password_hash=stored, id=user_id)
            self.execute(cur, "end_other_sessions", user_id=user_id, keep=keep_session or "")

    def change_password(
        self, user_id: int, current: str, new: str, keep_session: str | None
    ) -> None:
        """The user's own change: the current password first, throttled like sign-ins."""
        row = self.must(
            self.conn, "user_password", missing=NotFound(f"no user {user_id}"), id=user_id
        )
        email = row["email"]
        _check_password(new, "new_password")
        self.throttle.attempt(email, None)
        if not self._verify(row["password_hash"], current):
            raise InvalidInput("current_password: this is not your current password")
        self.throttle.succeeded(email, None)
        self.set_password(user_id, new, keep_session)

    # ------------------------------------------------------------------------ memberships

    def set_role(self, user_id: int, client_id: int, role: str) -> None:
        check_role(role)
        with self.db.write() as cur:
            self.execute(cur, "set_role", user_id=user_id, client_id=client_id, role=role)

    def remove_member(self, client_id: int, user_id: int) -> None:
        with self.db.write() as cur:
            if not self.execute(cur, "remove_member", client_id=client_id, user_id=user_id):
                raise NotFound(f"no member {user_id}")

    def members(self, client_id: int) -> list[Member]:
        rows = self.all(self.conn, "members", client_id=client_id)
        return [Member(int(r["id"]), r["email"], r["role"]) for r in rows]

    # ---------------------------------------------------------------------------- sessions

    def login(self, email: str, password: str, address: str | None = None) -> str:
        """A new session token. Throttled per account at `address` (the caller's IP, or
        its IPv6 /64), per address and per account before any hashing; an unknown email,
        an account without a password and a wrong password cost the same one verification
        and answer the same."""
        email = email.strip().lower()
        self.throttle.attempt(email, address)
        row = self.one(self.conn, "login_user", email=email)
        if not self._verify(row["password_hash"] if row else NO_PASSWORD, password) or row is None:
            raise Unauthenticated("wrong email or password")
        self.throttle.succeeded(email, address)
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with self.db.write() as cur:
            self.execute(
                cur,
                "insert_session",
                token_hash=_digest(token),
                user_id=row["id"],
                now=now,
                expires_at=now + SESSION_TTL,
            )
            self.execute(cur, "end_expired_sessions", user_id=row["id"], now=now)
        return token

    def logout(self, token: str) -> None:
        with self.db.write() as cur:
            self.execute(cur, "end_session", token_hash=_digest(token))

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
            key_id = self.value(
                cur,
                "insert_key",
                client_id=client_id,
                name=name,
                role=role,
                prefix=token[: len(KEY_PREFIX) + 6],
                token_hash=_digest(token),
                now=now,
                created_by=created_by,
            )
        return self.key(client_id, int(key_id)), token

    def key(self, client_id: int, key_id: int) -> ApiKey:
        row = self.must(
            self.conn,
            "key",
            missing=NotFound(f"no API key {key_id}"),
            id=key_id,
            client_id=client_id,
        )
        return _key(row)

    def keys(self, client_id: int) -> list[ApiKey]:
        return [_key(r) for r in self.all(self.conn, "keys", client_id=client_id)]

    def revoke_key(self, client_id: int, key_id: int) -> ApiKey:
        with self.db.write() as cur:
            self.execute(cur, "revoke_key", now=time.time(), id=key_id, client_id=client_id)
        return self.key(client_id, key_id)

    # ------------------------------------------------------------------------- principals

    def principal(self, token: str) -> Principal:
        """The caller a bearer token stands for."""
        if token.startswith(KEY_PREFIX):
            return self._key_principal(token)
        if token.startswith(SESSION_PREFIX):
            return self._session_principal(token)
        raise Unauthenticated("unknown kind of token: send an API key or a session token")

    def _key_principal(self, token: str) -> Principal:
        row = self.must(
            self.conn,
            "key_principal",
            missing=Unauthenticated("unknown or revoked API key"),
            token_hash=_digest(token),
        )
        return Principal(
            f"key:{row['id']} ({row['name']})",
            roles={int(row["client_id"]): row["role"]},
            key_id=row["id"],
        )

    def _session_principal(self, token: str) -> Principal:
        conn = self.conn
        row = self.must(
            conn,
            "session_user",
            missing=Unauthenticated("unknown or expired session: log in again"),
            token_hash=_digest(token),
            now=time.time(),
        )
        roles = self.all(conn, "user_roles", user_id=row["id"])
        return Principal(
            f"user:{row['email']}",
            platform_admin=bool(row["platform_admin"]),
            roles={int(r["client_id"]): r["role"] for r in roles},
            user_id=int(row["id"]),
            session=_digest(token),
        )


def _user(row: Row) -> User:
    return User(int(row["id"]), row["email"], bool(row["platform_admin"]))


def _key(row: Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        client_id=row["client_id"],
        name=row["name"],
        role=row["role"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        revoked_at=row["revoked_at"],
    )
