"""Serve a sandbox app in memory to code that uses ``requests`` (through ``responses``)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import responses
from flask import Flask
from requests import PreparedRequest

_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "host"}


class _AnyMethodCallback(responses.CallbackResponse):
    """A callback registration that matches every HTTP method."""

    def matches(self, request: PreparedRequest) -> tuple[bool, str]:
        """Match on the URL alone."""
        if not self._url_matches(self.url, str(request.url)):
            return False, "URL does not match"
        return True, ""


def mount_sandbox(rsps: responses.RequestsMock, app: Flask, base_url: str) -> None:
    """Answer every request under ``base_url`` (any method) from ``app``'s test client."""
    base = base_url.rstrip("/")
    prefix = urlsplit(base).path
    client = app.test_client()

    def forward(request: PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(str(request.url))
        path = parts.path[len(prefix) :] or "/"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body: Any = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        answer = client.open(
            path,
            method=str(request.method),
            base_url=base + "/",
            query_string=parts.query,
            headers=headers,
            data=body or b"",
        )
        reply = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        return answer.status_code, reply, answer.get_data()

    pattern = re.compile(re.escape(base) + r"(?:[/?#].*)?$")
    rsps.add(_AnyMethodCallback(method="GET", url=pattern, callback=forward, content_type=None))
