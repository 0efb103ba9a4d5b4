"""Token buckets kept in this process: the API's request rate limit and the throttle on
failed sign-ins share them. With several processes each enforces its own share."""

from __future__ import annotations

import threading
import time

from stockyard.errors import RateLimited

_FORGET_AFTER = 100_000  # buckets kept before idle ones are dropped (memory stays bounded)


class TokenBuckets:
    """`burst` tokens per key, refilled at `per_second`; a rate of 0 turns them off."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.rate = per_second
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

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
            if len(self._buckets) > _FORGET_AFTER:  # forget idle keys rather than grow forever
                idle = self.burst / self.rate
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < idle}
            return None


class LoginThrottle:
    """Password attempts per account and per address.

    Every attempt spends a token of both buckets before the password is checked (so a
    burst of concurrent guesses is counted too); a success gives them back. An empty bucket
    refuses the attempt unchecked, right or wrong, with the time until the next one. Unknown
    emails have buckets like known ones, so a refusal says nothing about which exist.
    """

    def __init__(
        self,
        account: tuple[int, float] = (10, 1 / 30),
        address: tuple[int, float] = (50, 1 / 5),
    ) -> None:
        self.accounts = TokenBuckets(account[1], account[0])
        self.addresses = TokenBuckets(address[1], address[0])

    def attempt(self, account: str, address: str | None) -> None:
        """Spends one attempt, or raises RateLimited."""
        wait = self.accounts.take(account)
        if wait is not None:
            raise RateLimited(wait, "too many failed sign-ins for this account")
        if address is not None:
            wait = self.addresses.take(address)
            if wait is not None:
                self.accounts.give_back(account)
                raise RateLimited(wait, "too many failed sign-ins from this address")

    def succeeded(self, account: str, address: str | None) -> None:
        self.accounts.give_back(account, full=True)
        if address is not None:
            self.addresses.give_back(address)
