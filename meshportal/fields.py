"""Input rules shared by every model, form, serializer and import: one place each.

* ``NameField``: a one-line name. Refuses control characters (CR/LF, tabs, NUL, ...): a name
  ends up in e-mail subjects, log lines, CSV exports and HTML titles, where a line break splits
  or forges what follows.
* ``PercentField``: a percentage, 0 to 100.
* ``check_value``: validate one value against a model field's own rules (max_length and
  validators), so services that take plain values (tags, token names) use the model's limits.
"""

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def validate_single_line(value) -> None:
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValidationError(
            "Use no control characters (line breaks, tabs, NUL) here.", code="control_character"
        )


def one_line(text: str) -> str:
    """Text for a one-line place (an e-mail subject): runs of whitespace and controls -> one space."""
    return " ".join(_CONTROL.sub(" ", text or "").split())


class NameField(models.CharField):
    """A CharField for names and titles: one line, no control characters."""

    default_validators = [validate_single_line]

    def deconstruct(self):
        # Validators live in Python only: the column is a plain varchar, no migration needed.
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


validate_percent: list[Callable[[Any], None]] = [
    MinValueValidator(Decimal(0)),
    MaxValueValidator(Decimal(100)),
]


class PercentField(models.DecimalField):
    """A percentage: 0 to 100, e.g. an availability SLO of 99.9."""

    default_validators = validate_percent

    def deconstruct(self):
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs


def check_value(model, field_name: str, value, *, key: str | None = None):
    """``value`` cleaned by the model field's own rules; ValidationError({key: ...}) if not."""
    field = model._meta.get_field(field_name)
    try:
        return field.clean(value, None)
    except ValidationError as e:
        raise ValidationError({key or field_name: e.messages}) from None
