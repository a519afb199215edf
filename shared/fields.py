"""Marshmallow fields and validators that more than one service validates with."""
from marshmallow import ValidationError, fields, validate


def no_trailing_newline(value):
    # The regex documents the rule in OpenAPI; Python's `$` also matches before a final newline,
    # which PostgreSQL's CHECK would then turn into a 500.
    if value.endswith("\n"):
        raise ValidationError("must be digits only (0-9)")


CODE = [validate.Regexp(r"^[0-9]+$", error="must be digits only (0-9)"), no_trailing_newline]


class Text(fields.String):
    """A string stripped of surrounding space, refused if blank or holding NUL (PostgreSQL rejects it)."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).strip()
        if "\x00" in value:
            raise ValidationError("must not contain NUL characters")
        if not value:
            raise ValidationError("must not be blank")
        return value
