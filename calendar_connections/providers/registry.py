"""The providers the service knows, by name: what the engine and the connect flow look up."""

from __future__ import annotations

from .google.provider import GOOGLE
from .outlook.provider import OUTLOOK
from .spec import ProviderSpec

_REGISTRY: dict[str, ProviderSpec] = {}


def register(spec: ProviderSpec) -> None:
    """Make ``spec`` the provider named ``spec.name``."""
    _REGISTRY[spec.name] = spec


def unregister(name: str) -> None:
    """Forget the provider named ``name`` (a test's own provider, when it is done)."""
    _REGISTRY.pop(name, None)


def provider_spec(name: str) -> ProviderSpec:
    """The provider named ``name`` (a ``Provider`` value or a registered name)."""
    return _REGISTRY[str(name)]


def label(name: str) -> str:
    """The human name of a provider."""
    return provider_spec(name).label


register(GOOGLE)
register(OUTLOOK)
