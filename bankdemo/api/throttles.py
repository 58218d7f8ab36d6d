"""Throttles of the API: password guessing at the token endpoint, and commands per user.

Rates come from the settings (DEFAULT_THROTTLE_RATES, filled from the environment) when a
request arrives, not when the module was imported, so a deployment or a test can change them.
Counts are kept in Django's cache: per process with the default local-memory cache, so set a
shared cache (Redis, the database) when several processes serve the API.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _RateFromSettings:
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class TokenThrottle(_RateFromSettings, AnonRateThrottle):
    """Requests for a token, per client address (nobody is authenticated there yet)."""

    scope = "token"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class CommandThrottle(_RateFromSettings, UserRateThrottle):
    """Commands, per user; reads on the same view pass untouched."""

    scope = "commands"

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
