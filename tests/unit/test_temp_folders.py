"""The test suite writes only under pytest's temporary folder, and so do the processes it starts."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from airflow_provider_braze.delivery import spool_root
from tests.conftest import AIRFLOW_HOME


def test_temporary_files_go_under_pytests_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert Path(tempfile.gettempdir()).is_relative_to(base)
    assert Path(os.environ["TMPDIR"]).is_relative_to(base)
    assert Path(os.environ["AIRFLOW_HOME"]) == AIRFLOW_HOME
    assert AIRFLOW_HOME.is_relative_to(base)
    assert Path(spool_root()).is_relative_to(base)
    child = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(child.stdout.strip()).is_relative_to(base)
