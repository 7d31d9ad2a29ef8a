"""The provider sandbox as a test's only app (``app`` and ``client``), and PKCE pairs for it.

Modules that test the sandbox itself import ``app`` and ``client`` from here, in place of the
service's fixtures of the same names."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
from flask import Flask
from flask.testing import FlaskClient
from provider_sandbox import create_sandbox_app


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture()
def app() -> Flask:
    """A fresh sandbox."""
    return create_sandbox_app()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    """The sandbox's test client."""
    return app.test_client()
