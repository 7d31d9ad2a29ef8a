"""The service's wheel: the service alone, without the provider sandbox (a development tool)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_service_and_no_sandbox(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", str(ROOT), "--wheel-dir", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("calendar_connections-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"calendar_connections", wheel.name.split("-py3")[0] + ".dist-info"}
    assert "calendar_connections/__init__.py" in names
    assert not [name for name in names if "sandbox" in name]
    entry_points = [name for name in names if name.endswith("entry_points.txt")]
    for name in entry_points:
        assert "sandbox" not in zipfile.ZipFile(wheel).read(name).decode()
