"""Marshmallow fields and validators that more than one service validates with."""
import unicodedata

from marshmallow import ValidationError, fields, validate


def no_trailing_newline(value):
    # The regex documents the rule in OpenAPI; Python's `$` also matches before a final newline,
    # which PostgreSQL's CHECK would then turn into a 500.
    if value.endswith("\n"):
        raise ValidationError("must be digits only (0-9)")


CODE = [validate.Regexp(r"^[0-9]+$", error="must be digits only (0-9)"), no_trailing_newline]


# Bidi embeddings, overrides and isolates: they make text display other than it reads (王\u202e秀英).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters that draw nothing (Hangul fillers, the blank Braille pattern); format characters (Cf: zero-width
# spaces and joiners, the byte-order mark, soft hyphens) draw nothing either.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Free text keeps its line breaks and tabs; every other control character is refused.
LAYOUT = frozenset("\n\r\t")


def _invisible(ch):
    return ch.isspace() or ch in BLANK_LETTERS or unicodedata.category(ch) == "Cf"


class Text(fields.String):
    """Names and free text: stripped of surrounding space and invisible characters; refused if blank once
    invisible characters are left out (a name of zero-width spaces or a lone BOM), or if holding a control
    character (NUL, which PostgreSQL rejects, BEL, ESC...; line breaks and tabs excepted) or a bidi override.
    Every name and free-text field of the services' schemas is one, so each refuses the same."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        start, end = 0, len(value)
        while start < end and _invisible(value[start]):
            start += 1
        while end > start and _invisible(value[end - 1]):
            end -= 1
        value = value[start:end]
        if "\x00" in value:
            raise ValidationError("must not contain NUL characters")
        if any(unicodedata.category(ch) == "Cc" and ch not in LAYOUT for ch in value):
            raise ValidationError("must not contain control characters")
        if any(ch in BIDI_CONTROLS for ch in value):
            raise ValidationError("must not contain bidi override, embedding or isolate characters")
        if all(_invisible(ch) for ch in value):
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
