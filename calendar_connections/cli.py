"""Operator commands: `flask auth ...` and `flask tokens ...`."""

from __future__ import annotations

import re
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .auth import issue_token
from .crypto import get_cipher
from .extensions import db
from .models import OAuthState, OAuthToken
from .token_store import rotate_token_keys

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``5m``, ``1h`` or ``2d`` as a timedelta."""
    match = _DURATION.match(text.lower())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration such as 300, 5m, 1h or 2d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


auth_cli = AppGroup("auth", help="Bearer tokens for local use.")
tokens_cli = AppGroup("tokens", help="Stored OAuth tokens.")


@auth_cli.command("issue-token")
@click.argument("user_id")
@click.option("--expires", default="1h", show_default=True, help="Lifetime: 300, 5m, 1h, 2d.")
def issue_token_command(user_id: str, expires: str) -> None:
    """Print a Bearer token for USER_ID, signed with the configured HS256 secret."""
    algorithm = current_app.config["JWT_ALGORITHM"]
    if not algorithm.startswith("HS"):
        raise click.ClickException(
            f"JWT_ALGORITHM is {algorithm}: tokens are issued by the CRM auth service, "
            "which holds the private key; this command only signs HS256 tokens."
        )
    lifetime = parse_duration(expires)
    if lifetime.total_seconds() <= 0:
        raise click.BadParameter("must be longer than zero", param_hint="--expires")
    click.echo(issue_token(user_id, lifetime))


@tokens_cli.command("rotate-keys")
def rotate_keys_command() -> None:
    """Re-encrypt every stored token under the first key of TOKEN_ENCRYPTION_KEYS."""
    cipher = get_cipher()
    tokens = list(db.session.execute(select(OAuthToken)).scalars())
    count = rotate_token_keys(tokens, cipher)
    states = list(db.session.execute(select(OAuthState)).scalars())
    for state in states:
        state.code_verifier_encrypted = cipher.rotate(state.code_verifier_encrypted)
    db.session.commit()
    click.echo(f"Re-encrypted {count} token(s) and {len(states)} pending authorization(s).")


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(auth_cli)
    app.cli.add_command(tokens_cli)
