"""API rate limits: judgments and exports per user, invalid tokens per client IP.

Rates live in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``PAIRWISE_THROTTLE_*`` in
config/settings.py) and are read on every request, not at import, so a changed setting applies.
Counts are kept in Django's default cache, on disk under the data dir (config/settings.py), so the
web processes of one host share each limit; separate hosts count on their own.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle, SimpleRateThrottle


def client_address(request: Any) -> str | None:
    """The client's IP address: ``REMOTE_ADDR``, or behind ``NUM_PROXIES`` reverse proxies
    (``PAIRWISE_PROXY_COUNT``) the address the nearest of them saw in ``X-Forwarded-For``. Also
    django-axes' (``AXES_CLIENT_IP_CALLABLE``), so lockout and throttles agree on who is who."""
    address = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        remote = request.META.get("REMOTE_ADDR")
        return str(remote) if remote else None


def rate_of(scope: str | None) -> str | None:
    rates: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
    rate = rates.get(scope or "")
    return None if rate is None else str(rate)


class ScopedThrottle(ScopedRateThrottle):
    """DRF's scoped throttle (``throttle_scope`` on the view), rate read from the settings now."""

    def get_rate(self) -> str | None:
        return rate_of(self.scope)


class TokenFailureThrottle(SimpleRateThrottle):
    """Invalid API tokens per client IP. Past the rate every token from that IP answers 429 with
    ``Retry-After`` until the window has room again, so guessing keys gains nothing from it."""

    scope = "auth"
    num_requests: int | None
    duration: int | None

    def get_rate(self) -> str | None:
        return rate_of(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}

    def _recent(self, request: Request) -> tuple[str, list[float], float]:
        assert self.duration is not None
        key, now = self.get_cache_key(request, None), time.time()
        history: list[float] = self.cache.get(key, [])
        return key, [moment for moment in history if moment > now - self.duration], now

    def check(self, request: Request) -> None:
        """Raise ``Throttled`` when this IP sent too many invalid tokens lately."""
        if self.num_requests is None or self.duration is None:
            return
        _, history, now = self._recent(request)
        if len(history) >= self.num_requests:
            wait = max(1.0, self.duration - (now - min(history)))
            raise exceptions.Throttled(
                wait=wait, detail="too many invalid API tokens from this address"
            )

    def record_failure(self, request: Request) -> None:
        if self.num_requests is None or self.duration is None:
            return
        key, history, now = self._recent(request)
        self.cache.set(key, [*history, now], self.duration)
