"""Token buckets kept in this process: the API's request rate limit and the throttle on
failed sign-ins share them. With several processes each enforces its own share."""

from __future__ import annotations

import logging
import threading
import time

from stockyard.errors import RateLimited

log = logging.getLogger("stockyard.throttle")

_FORGET_AFTER = 100_000  # buckets kept before idle ones are dropped (memory stays bounded)


class TokenBuckets:
    """`burst` tokens per key, refilled at `per_second`; a rate of 0 turns them off."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.rate = per_second
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()
        # Pruning walks every bucket: it runs only once the dict has doubled since the last
        # prune, so with many active buckets its cost is spread over as many calls (O(1)
        # each) instead of rebuilding the dict on every call.
        self._prune_above = _FORGET_AFTER

    def take(self, key: str) -> float | None:
        """Spends a token: None when the call may go ahead; else the seconds until it may."""
        return self._spend(key, 1.0)

    def wait(self, key: str) -> float | None:
        """Like `take`, without spending: None when a token is there."""
        return self._spend(key, 0.0)

    def give_back(self, key: str, full: bool = False) -> None:
        """Returns one token (or fills the bucket): the spent attempt did not count."""
        if self.rate <= 0:
            return
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, time.monotonic()))
            self._buckets[key] = (self.burst if full else min(self.burst, tokens + 1.0), at)

    def _spend(self, key: str, cost: float) -> float | None:
        if self.rate <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens - cost, now)
            if len(self._buckets) > self._prune_above:  # forget idle keys, not grow forever
                self._prune(now)
                self._prune_above = max(_FORGET_AFTER, 2 * len(self._buckets))
            return None

    def _prune(self, now: float) -> None:
        """Drops the buckets that have refilled: a new one would start just as full."""
        self._buckets = {
            k: (tokens, at)
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate < self.burst
        }


class LoginThrottle:
    """Password attempts per account and address, per address, and per account.

    The strict bucket is per (account, address): a guesser exhausts only its own, so it
    cannot lock the real user out of sign-in from elsewhere. The per-address bucket bounds
    spraying many accounts from one place; the per-account backstop, far larger, bounds a
    guess spread over many addresses (and logs a warning when it runs out, which does lock
    the account until it refills).

    Every attempt spends a token of each bucket before the password is checked (so a
    burst of concurrent guesses is counted too); a success gives them back. An empty bucket
    refuses the attempt unchecked, right or wrong, with the time until the next one. Unknown
    emails have buckets like known ones, so a refusal says nothing about which exist.
    """

    def __init__(
        self,
        account: tuple[int, float] = (10, 1 / 30),
        address: tuple[int, float] = (50, 1 / 5),
        backstop: tuple[int, float] = (1000, 1 / 30),
    ) -> None:
        self.pairs = TokenBuckets(account[1], account[0])
        self.addresses = TokenBuckets(address[1], address[0])
        self.accounts = TokenBuckets(backstop[1], backstop[0])

    @staticmethod
    def _pair(account: str, address: str | None) -> str:
        return f"{address or ''}\n{account}"  # no address (CLI, own password): one bucket

    def attempt(self, account: str, address: str | None) -> None:
        """Spends one attempt, or raises RateLimited."""
        pair = self._pair(account, address)
        wait = self.pairs.take(pair)
        if wait is not None:
            raise RateLimited(wait, "too many failed sign-ins for this account")
        if address is not None:
            wait = self.addresses.take(address)
            if wait is not None:
                self.pairs.give_back(pair)
                raise RateLimited(wait, "too many failed sign-ins from this address")
        wait = self.accounts.take(account)
        if wait is not None:
            self.pairs.give_back(pair)
            if address is not None:
                self.addresses.give_back(address)
            raise RateLimited(wait, "too many failed sign-ins for this account")
        if self.accounts.wait(account) is not None:
            # This attempt spent the backstop's last token: from many addresses, as one
            # address alone runs out long before. The account is locked until it refills.
            log.warning(
                "sign-in backstop tripped for account %r: %d failed attempts from many "
                "addresses; its sign-ins are refused until the bucket refills",
                account,
                int(self.accounts.burst),
            )

    def succeeded(self, account: str, address: str | None) -> None:
        self.pairs.give_back(self._pair(account, address), full=True)
        if address is not None:
            self.addresses.give_back(address)
        # One back, not a refill: a success must not reopen the backstop for a guesser.
        self.accounts.give_back(account)
