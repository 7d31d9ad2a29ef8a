"""The README walkthrough, run as the script it says it is: twice, on ports of its own."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from ..support.stack import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def walkthrough() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Walkthrough", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no script in the walkthrough"
    return match.group(1)


def run(script: Path, port: int, sandbox_port: int) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APP_ENV", "DATABASE_URL", "JWT_", "GOOGLE_", "OUTLOOK_"))
    }
    env.update(PORT=str(port), SANDBOX_PORT=str(sandbox_port))
    return subprocess.run(
        ["bash", str(script)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_walkthrough_runs_twice_and_stops_what_it_started(tmp_path: Path) -> None:
    script = tmp_path / "walkthrough.sh"
    script.write_text(walkthrough())
    port, sandbox_port = free_port(), free_port()
    for _ in range(2):
        result = run(script, port, sandbox_port)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "Review (moved)" in result.stdout
        # The last change came by push: no sync call between it and the CRM showing it.
        assert "Review (pushed)" in result.stdout
        assert '"pushActive":true' in result.stdout.replace(" ", "")
        assert not listening(port) and not listening(sandbox_port)
    ignored = subprocess.run(
        ["git", "check-ignore", "sandbox.log", "service.log"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == ["sandbox.log", "service.log"]


def test_the_walkthrough_refuses_a_port_in_use(tmp_path: Path) -> None:
    script = tmp_path / "walkthrough.sh"
    script.write_text(walkthrough())
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = run(script, taken, free_port())
    assert result.returncode == 1
    assert f"port {taken} is in use" in result.stderr
