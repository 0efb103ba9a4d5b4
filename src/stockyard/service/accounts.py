"""People and keys: sign-in, passwords, users, members of a client, API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stockyard.errors import Conflict, Forbidden, InvalidInput, NotFound
from stockyard.service.base import ADMIN, ServiceBase

if TYPE_CHECKING:
    from stockyard.accounts import ApiKey, Member, Principal, User


class AccountsService(ServiceBase):
    def login(self, email: str, password: str, address: str | None = None) -> str:
        """A session token; failed attempts are throttled per account and per `address`
        (RateLimited once too many)."""
        return self.accounts.login(email, password, address)

    def logout(self, token: str) -> None:
        self.accounts.logout(token)

    def change_password(self, who: Principal, current: str, new: str) -> None:
        """The signed-in user's own password; ends their other sessions (not this one)."""
        if who.user_id is None:
            raise Forbidden("only a signed-in user has a password to change (not an API key)")
        self.accounts.change_password(who.user_id, current, new, who.session)

    def user(self, who: Principal, email: str) -> User:
        """A platform administrator looks up any account by its email."""
        self._platform(who)
        user = self.accounts.user_by_email(email)
        if user is None:
            raise NotFound(f"no user {email.strip().lower()}")
        return user

    def set_password(self, who: Principal, email: str, new: str) -> None:
        """A platform administrator sets anyone's password (the first one of an account a
        client added, or a forgotten one); every session of that user ends."""
        self.accounts.set_password(self.user(who, email).id, new)

    def create_user(self, who: Principal, email: str, password: str, platform_admin: bool) -> User:
        self._platform(who)
        return self.accounts.create_user(email, password, platform_admin)

    # ------------------------------------------------------------------------------ keys

    def keys(self, who: Principal, client_id: int) -> list[ApiKey]:
        self._allow(who, client_id, ADMIN)
        return self.accounts.keys(client_id)

    def create_key(
        self, who: Principal, client_id: int, name: str, role: str
    ) -> tuple[ApiKey, str]:
        self._allow(who, client_id, ADMIN)
        key, token = self.accounts.create_key(client_id, name, role, who.actor)
        self._audit(who, client_id, "key.create", key=key.id, name=key.name, role=key.role)
        return key, token

    def revoke_key(self, who: Principal, client_id: int, key_id: int) -> ApiKey:
        self._allow(who, client_id, ADMIN)
        key = self.accounts.revoke_key(client_id, key_id)
        self._audit(who, client_id, "key.revoke", key=key.id, name=key.name)
        return key

    # --------------------------------------------------------------------------- members

    def members(self, who: Principal, client_id: int) -> list[Member]:
        self._allow(who, client_id, ADMIN)
        return self.accounts.members(client_id)

    def set_member(
        self,
        who: Principal,
        client_id: int,
        email: str,
        role: str,
        password: str | None = None,
    ) -> Member:
        """Give a user a role on the client; an email without an account gets one.

        Accounts are shared between clients, so a client's administrator neither sets nor
        learns a password, and the answer is the same whether the account existed (nor do
        random user ids tell). A new account has no password until a platform
        administrator sets one; only a platform administrator may give `password`, and only
        for a new account (an existing one keeps its own: that is an error, not ignored).
        """
        from stockyard.accounts import Member, check_role

        self._allow(who, client_id, ADMIN)
        check_role(role)
        if password is not None and not who.platform_admin:
            raise InvalidInput(
                "password: a client administrator does not set passwords; the new member's"
                " first password is set by a platform administrator"
            )
        user = self.accounts.user_by_email(email)
        if user is None:
            user = self.accounts.create_user(email, password)
        elif password is not None:
            raise InvalidInput(
                f"password: {user.email} has an account and keeps its password"
                " (set it with `stockyard users passwd`)"
            )
        self.accounts.set_role(user.id, client_id, role)
        self._audit(who, client_id, "member.set", user=user.id, email=user.email, role=role)
        return Member(user.id, user.email, role)

    def remove_member(self, who: Principal, client_id: int, user_id: int) -> None:
        self._allow(who, client_id, ADMIN)
        if user_id == who.user_id and not who.platform_admin:
            raise Conflict("you cannot remove yourself; another administrator can")
        self.accounts.remove_member(client_id, user_id)
        self._audit(who, client_id, "member.remove", user=user_id)
