"""Start-up: each command imports only what it uses (the times themselves are in the bench)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Modules that cost start-up time and that `plait --help` has no use for.
HEAVY = (
    "rich",
    "yaml",
    "jsonschema",
    "sqlite3",
    "psycopg",
    "jinja2",
    "asyncio",
    "plait._engine",
    "plait._runs",
    "plait._files",
    "plait.stores",
)

PROBE = """
import json, sys
sys.argv = ["plait", *json.loads(sys.argv[1])]
try:
    from plait.cli import main
    main()
except SystemExit:
    pass
sys.stdout.flush()
print("\\nMODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> set[str]:
    """The modules loaded by the ``plait`` command with ``args``, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )
    line = done.stderr.rsplit("MODULES ", 1)[-1]
    return set(json.loads(line))


def loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def test_import_plait_loads_no_module_of_plait_until_a_name_is_used() -> None:
    code = (
        "import sys, plait; before = sorted(m for m in sys.modules if m.startswith('plait.')); "
        "plait.Workflow; print(before, 'plait._workflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"


@pytest.mark.parametrize("args", [("--help",), ("run", "--help"), ("--version",)])
def test_help_loads_no_engine_no_rich_no_store(args: tuple[str, ...]) -> None:
    modules = imported_by(*args)
    assert "click" in modules
    assert [name for name in HEAVY if loaded(modules, name)] == []


def test_a_one_task_run_of_a_python_file_loads_no_yaml_jsonschema_or_postgres(
    tmp_path: Path,
) -> None:
    (tmp_path / "one.py").write_text(
        "import plait\nwf = plait.Workflow('one')\nwf.add_task('hello', lambda: 'hello')\n"
    )
    env = {"PLAIT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    modules = imported_by("run", "one.py:wf", cwd=tmp_path, env=env)
    assert "plait._engine" in modules  # it did run
    assert (tmp_path / "home" / "plait.db").exists()
    unwanted = ("yaml", "jsonschema", "psycopg", "rich.live", "rich.table", "rich.progress_bar")
    assert [name for name in unwanted if loaded(modules, name)] == []


def test_lazily_loaded_errors_still_read_plait_when_a_run_stores_them() -> None:
    code = (
        "import asyncio, plait\n"
        "async def nap():\n"
        "    await asyncio.sleep(5)\n"
        "wf = plait.Workflow('slow')\n"
        "wf.add_task('nap', nap, timeout=0.05)\n"
        "print(plait.run(wf, max_retries=0).tasks['nap'].error.type)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "plait.TaskTimeoutError"
