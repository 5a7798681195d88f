"""Sphinx configuration: Markdown pages (MyST) and the API reference from docstrings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# autodoc documents this checkout's package, not whatever copy the virtualenv has installed.
sys.path.insert(0, str(ROOT))
# Importing the provider imports Airflow, which wants a home; keep it out of the user's.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "docs" / "_build" / "airflow-home"))

from airflow_provider_braze import __version__  # noqa: E402

project = "airflow-provider-braze"
copyright = "airflow-provider-braze developers"
release = __version__
version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"
html_title = f"airflow-provider-braze {__version__}"
