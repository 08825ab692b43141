"""The examples run as the README says they do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_pipeline_example_runs_its_branches_in_parallel_and_retries() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "pipeline.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "succeeded in" in out
    assert "retrying  upload_report" in out
    assert "upload attempts: 2" in out
    starts = [
        float(line.split()[0][:-1]) for line in out.splitlines() if "started   total_" in line
    ]
    assert len(starts) == 3
    assert max(starts) - min(starts) < 0.1, "the branches did not start together"
