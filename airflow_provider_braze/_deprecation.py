"""Old public names kept working for one release, with a deprecation warning."""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def renamed_attribute(module: str, name: str, renamed: dict[str, str]) -> Any:
    """For a module's ``__getattr__``: the new object for an old name, with a warning; else
    AttributeError as usual."""
    if name not in renamed:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    from airflow.exceptions import AirflowProviderDeprecationWarning

    new = renamed[name]
    warnings.warn(
        f"{module}.{name} is deprecated and will be removed in the next release; use {new}.",
        AirflowProviderDeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(module), new)
