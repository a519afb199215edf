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


# Ids go into bigint columns: anything larger would be a database error, not a field error.
ID = validate.Range(1, 2 ** 63 - 1, error="must be an id from 1 to 2^63-1")
# A client-chosen idempotency key (request_id, transfer_id).
CLIENT_ID = [validate.Length(min=1, max=100, error="must be 1 to 100 characters"),
             validate.Regexp(r"^[A-Za-z0-9._:-]+\Z", error="letters, digits and . _ : - only")]


def one_of(values):
    return validate.OneOf(list(values), error="must be one of: {choices}")


def page():
    """(limit, after) fields of a cursor-paged listing."""
    return (fields.Integer(load_default=50, validate=validate.Range(1, 500)),
            fields.Integer(load_default=0, validate=validate.Range(0, 2 ** 63 - 1),
                           metadata={"description": "cursor: `next` of the previous page"}))
