"""A workflow in a Python file, loaded by tests/test_files.py as 'pyflow.py:wf'."""

from __future__ import annotations

import plait_fixture_tasks  # found because the file's directory is put on sys.path

import plait

wf = plait.Workflow("from-a-python-file")
wf.add_task("fetch", plait_fixture_tasks.fetch, params={"day": "monday"})
wf.add_task("count", plait_fixture_tasks.count_words, depends_on=["fetch"], params={"publish": ""})

not_a_workflow = plait_fixture_tasks.fetch
