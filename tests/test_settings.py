"""The typed settings: one attribute per documented variable, read once, frozen."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from provider_sandbox.cli import service_settings

from calendar_connections.config import SANDBOX_PATHS, SETTINGS, Settings, get_settings

README = Path(__file__).parent.parent / "README.md"


def test_every_documented_variable_is_a_setting_and_back() -> None:
    """The table in config.py is the one source: the settings object has exactly its names."""
    table = {setting.name.lower() for setting in SETTINGS}
    assert {item.name for item in dataclasses.fields(Settings)} == table


def test_readme_documents_every_variable() -> None:
    readme = README.read_text()
    missing = [setting.name for setting in SETTINGS if f"`{setting.name}`" not in readme]
    assert missing == []


def test_settings_are_typed_and_frozen(make_app: Callable[..., Flask]) -> None:
    app = make_app(SYNC_RETRY_BACKOFF_MAX="12.5", CORS_ORIGINS="https://a.example, https://b")
    settings = get_settings(app)
    assert settings.sync_retry_backoff_max == 12.5
    assert settings.cors_origins == ("https://a.example", "https://b")
    assert settings.sync_stale_after == 300 and settings.scheduler_enabled is False
    assert "token_encryption_keys" not in repr(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.sync_interval = 1  # type: ignore[misc]


def test_the_sandbox_url_points_every_provider_url_at_it(make_app: Callable[..., Flask]) -> None:
    settings = get_settings(make_app(PROVIDER_SANDBOX_URL="http://127.0.0.1:18090/"))
    assert settings.google_token_url == "http://127.0.0.1:18090/google/token"
    assert settings.outlook_graph_base_url == "http://127.0.0.1:18090/graph/v1.0"

    assert {
        name: "http://127.0.0.1:18090" + path for name, path in SANDBOX_PATHS.items()
    } == service_settings("http://127.0.0.1:18090"), "the sandbox serves these paths"
