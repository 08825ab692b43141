"""``plait serve`` on the command line: what it refuses before it listens, and what it prints."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from plait.cli._app import cli
from plait.stores import open_store
from plait.web._server import is_loopback


def serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["serve", *args], env=env or {})
    return result.exit_code, result.output


def test_only_loopback_addresses_count_as_this_machine() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org"))


def test_another_address_needs_an_explicit_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    open_store(url, create=True).close()
    code, output = serve("--store", url, "--host", "0.0.0.0", env={"PLAIT_UI_TOKEN": ""})
    assert code == 2
    assert "refusing to serve on '0.0.0.0'" in output and "PLAIT_UI_TOKEN" in output


def test_a_missing_store_or_the_memory_store_is_refused(tmp_path: Path) -> None:
    code, output = serve("--store", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and "error:" in output
    code, output = serve("--store", "memory://")
    assert code == 2 and "the memory store lives inside one process" in output


def test_it_prints_the_address_with_the_token_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    open_store(url, create=True).close()
    env = {k: v for k, v in os.environ.items() if k != "PLAIT_UI_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", "serve", "--store", url, "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    printed = process.stdout.readline() + process.stdout.readline()
    assert re.fullmatch(
        rf"plait serve: {re.escape(url)}\n  http://127\.0\.0\.1:\d+/\?token=[\w-]{{40,}}\n", printed
    )
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143  # as every plait command: interrupted by SIGTERM


def test_without_the_ui_extra_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "uvicorn" else real(name, *a),
    )
    code, output = serve()
    assert code == 2
    assert "plait serve needs its extra: pip install 'plait[ui]' (missing: uvicorn)" in output
