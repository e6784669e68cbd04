"""README.md's settings table names every variable the settings classes read, so a new setting
cannot go undocumented."""

from __future__ import annotations

import inspect
from pathlib import Path

from pydantic.fields import FieldInfo

import infra.settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _variable(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    return alias if isinstance(alias, str) else f"FRAUD_{name.upper()}"


def test_every_setting_is_in_the_readme() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(infra.settings, inspect.isclass)
        if issubclass(cls, infra.settings.FraudSettings) and cls is not infra.settings.FraudSettings
    ]
    variables = {
        _variable(name, field) for cls in classes for name, field in cls.model_fields.items()
    }
    assert len(variables) > 40
    text = README.read_text()
    missing = sorted(v for v in variables if f"`{v}`" not in text)
    assert not missing, f"README.md's settings table lacks {missing}"
