"""Resident identity fields: citizen ID numbers (GB 11643-1999) and mainland phone numbers.

Pure functions, no I/O. They sit on the bulk-import path (100,000 rows at a few
microseconds each), so the common, valid case takes one precompiled regex match
and a handful of slices; the detailed diagnosis only runs once a value has failed.
Error messages are shown to users as field-level errors, so each names what is
wrong and, where possible, what was expected.
"""
import re
from dataclasses import dataclass
from datetime import date

from shared.errors import ValidationFailed

__all__ = [
    "IdNumberError", "IdInfo", "check_character", "normalize_text", "parse_id_number",
    "check_agreement", "age_on", "age_band", "PhoneError", "normalize_phone",
]


# Refusals (422) as well as ValueErrors: callers name the field, and one that forgets to is still a 4xx.
class IdNumberError(ValidationFailed, ValueError):
    """A citizen ID number that cannot be accepted; str(exc) is the user-facing message."""


class PhoneError(ValidationFailed, ValueError):
    """A phone number that cannot be accepted; str(exc) is the user-facing message."""


@dataclass(frozen=True, slots=True)
class IdInfo:
    number: str       # 18 characters, check character upper-case
    region: str       # the 6-digit region code of first registration (it never changes)
    birth_date: date
    sex: str          # 'M' or 'F'


# --- normalisation -------------------------------------------------------------------------

# Chinese input methods and spreadsheets produce full-width forms (U+FF01-U+FF5E mirror
# ASCII 0x21-0x7E) and the ideographic space; people cannot see the difference, so they
# must not be the reason a number is refused.
_FULL_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULL_WIDTH[0x3000] = 0x20


def normalize_text(raw: str) -> str:
    """Full-width to ASCII, surrounding whitespace stripped, Excel's leading text marker (') dropped."""
    if not raw.isascii():
        raw = raw.translate(_FULL_WIDTH)
    raw = raw.strip()
    if raw[:1] == "'":
        raw = raw[1:].lstrip()
    return raw


# A spreadsheet that stored an ID or phone as a number shows it like 1.10105E+17; the
# digits past the 15th are already gone, so asking the user to "fix a typo" would mislead.
_EXCEL_NUMBER = re.compile(r"[0-9](?:\.[0-9]*)?[eE]\+?[0-9]{1,3}")
_EXCEL_MESSAGE = ("The {kind} {value} looks like a number the spreadsheet converted to scientific "
                  "notation, which loses digits. Format the column as Text in the spreadsheet "
                  "and type the numbers again.")


# --- citizen ID numbers ----------------------------------------------------------------------

# The whole valid shape, province included, so a good number needs one match; anything
# that fails it is re-examined by _repair_or_diagnose for the specific message.
_ID18_VALID = re.compile(
    r"(?:1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[1-3]|91)[0-9]{15}[0-9Xx]"
)
_ID18 = re.compile(r"[0-9]{17}[0-9Xx]")
_ID15 = re.compile(r"[0-9]{15}")
_CHECK_CHARS = "10X98765432"
_PROVINCES = frozenset(
    [str(p) for p in (*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47),
                      *range(50, 55), *range(61, 66), 71, 81, 82, 83, 91)]
)
# GB 11643 itself uses people born in the 1880s as examples, so the floor sits below them.
EARLIEST_BIRTH = date(1850, 1, 1)


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise IdNumberError("The first 17 characters of an ID number must be digits.")
    return _check_char(first17)


def _check_char(first17):
    # The weight of position i (7, 9, 10, 5, ...) is 2**(17-i) mod 11, and 13 = 2 (mod 11),
    # so reading the digits as a base-13 numeral and doubling gives the weighted sum mod 11
    # in one C-level call instead of 17 multiplications in Python.
    return _CHECK_CHARS[2 * int(first17, 13) % 11]


def parse_id_number(raw: str, today: date) -> IdInfo:
    """Normalise, upgrade a 15-digit number to 18, validate; raises IdNumberError with the reason."""
    s = normalize_text(raw)
    if _ID18_VALID.fullmatch(s) is None:
        s = _repair_or_diagnose(s)
    elif s[17] == "x":
        s = s[:17] + "X"

    ymd = s[6:14]
    born = _BIRTH_DATES.get(ymd)
    if born is None:
        born = _birth_date(ymd)
    if born > today:
        raise IdNumberError(f"The birth date in the ID number ({born.isoformat()}) is in the future.")
    if born < EARLIEST_BIRTH:
        raise IdNumberError(
            f"The birth date in the ID number ({born.isoformat()}) is before {EARLIEST_BIRTH.isoformat()}."
        )
    expected = _check_char(s[:17])
    if s[17] != expected:
        raise IdNumberError(
            f"The last character of the ID number should be {expected} for the 17 digits before it, "
            f"not {s[17]}; one of the characters is probably mistyped."
        )
    return IdInfo(s, s[:6], born, "M" if s[16] in "13579" else "F")


# Birth dates repeat constantly across an import, and building a date from three int()
# conversions costs more than the rest of the check; valid ones are remembered. Only years
# that can pass the range check are kept, which bounds the table to some 130,000 entries.
_BIRTH_DATES: dict[str, date] = {}


def _birth_date(ymd):
    try:
        born = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        raise IdNumberError(
            f"The birth date in the ID number (characters 7-14: {ymd}) is not a real calendar date."
        ) from None
    if EARLIEST_BIRTH.year <= born.year <= 2199:
        _BIRTH_DATES[ymd] = born
    return born


def _repair_or_diagnose(s):
    """The 18-character form of a 15-digit number, or IdNumberError saying what is wrong."""
    if _ID15.fullmatch(s) is not None:
        first17 = s[:6] + "19" + s[6:]
        s = first17 + _check_char(first17)
    elif _ID18.fullmatch(s) is None:
        raise IdNumberError(_diagnose_shape(s))
    if s[:2] not in _PROVINCES:
        raise IdNumberError(_region_message(s[:6]))
    return s if s[17] != "x" else s[:17] + "X"


def _diagnose_shape(s):
    # Only reached when the value is not 18 (or 15) well-formed characters: say which.
    if not s:
        return "Enter the ID number."
    if _EXCEL_NUMBER.fullmatch(s):
        return _EXCEL_MESSAGE.format(kind="ID number", value=s)
    n = len(s)
    if n not in (15, 18):
        return f"An ID number has 18 characters (or 15 for an old-style number); this one has {n}."
    if n == 15 and s[-1] in "Xx" and s[:-1].isdigit():
        return "An old-style 15-character ID number has digits only; X can only end an 18-character number."
    for i, c in enumerate(s):
        if c in "0123456789":
            continue
        if c in "Xx":
            return (f"X can only be the last character of an ID number; it is character {i + 1} here.")
        shown = "a space" if c.isspace() else repr(c)
        return (f"The ID number contains {shown} (character {i + 1}); only digits are allowed, "
                f"with X as the last character.")
    return "The ID number is not well formed."  # unreachable for 15/18 chars, kept for safety


def _region_message(region):
    if region[0] == "0":
        return f"The region code {region} (first 6 digits) is not valid: an ID number cannot start with 0."
    return (f"The region code {region} (first 6 digits) is not valid: {region[:2]} is not a "
            f"province code.")


_SEX_WORDS = {"M": "M", "m": "M", "男": "M", "F": "F", "f": "F", "女": "F"}
_SEX_NAMES = {"M": "male", "F": "female"}


def check_agreement(info: IdInfo, sex: str | None, birth_date: date | None) -> dict[str, str]:
    """Field-level messages where a stated sex or birth date contradicts the ID number."""
    problems = {}
    if sex is not None and sex != "":
        stated = _SEX_WORDS.get(sex.strip())
        if stated is None:
            problems["sex"] = f"Sex must be M or F, not {sex!r}."
        elif stated != info.sex:
            problems["sex"] = (f"Sex is given as {_SEX_NAMES[stated]}, but the ID number "
                               f"{info.number} is a {_SEX_NAMES[info.sex]}'s (17th digit).")
    if birth_date is not None and birth_date != info.birth_date:
        problems["birth_date"] = (f"Birth date is given as {birth_date.isoformat()}, but the ID number "
                                  f"says {info.birth_date.isoformat()}.")
    return problems


def age_on(birth_date: date, day: date) -> int:
    """Whole years completed on `day`; someone born on 29 February turns a year older on 1 March."""
    if day < birth_date:
        raise ValueError(f"{day.isoformat()} is before the birth date {birth_date.isoformat()}.")
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def age_band(age: int) -> str:
    """The coarse band that de-identified statistics report instead of an age."""
    if age < 0:
        raise ValueError(f"An age cannot be negative ({age}).")
    if age < 18:
        return "0-17"
    if age < 35:
        return "18-34"
    if age < 60:
        return "35-59"
    if age < 80:
        return "60-79"
    return "80+"


# --- phone numbers ---------------------------------------------------------------------------

_MOBILE_PLAIN = re.compile(r"1[3-9][0-9]{9}")
_MOBILE = re.compile(r"(?:\+?86|0086)?(1[3-9][0-9]{9})")
# Characters people put between digit groups; dropping them leaves the digits to judge.
_SEPARATORS = str.maketrans("", "", " -()\t.")
_EXTENSION_WORD = re.compile(r"\s*(?:转|分机|ext\.?|x)\s*([0-9]{1,6})\Z", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"\+?[0-9 ()\t.\-]+")
_DASH_EXTENSION = re.compile(r"(.+?)\s*-\s*([0-9]{1,6})")
_INTERNATIONAL = re.compile(r"(?:\+86|0086)([1-9][0-9]{8,10})")


def normalize_phone(raw: str) -> str:
    """A mobile as 11 digits ("13812345678"), a landline as "021-65012345" or "021-65012345-123"."""
    s = normalize_text(raw)
    if _MOBILE_PLAIN.fullmatch(s):
        return s
    if not s:
        raise PhoneError("Enter the phone number.")
    if _EXCEL_NUMBER.fullmatch(s):
        raise PhoneError(_EXCEL_MESSAGE.format(kind="phone number", value=s))

    extension = None
    m = _EXTENSION_WORD.search(s)
    if m is not None:
        extension, s = m.group(1), s[:m.start()]
    if _PHONE_CHARS.fullmatch(s) is None:
        raise PhoneError(f"The phone number {raw.strip()!r} contains characters that are not part of a "
                         f"phone number; use digits, with spaces or dashes between groups if you like.")

    digits = s.translate(_SEPARATORS)
    if extension is None:
        m = _MOBILE.fullmatch(digits)
        if m is not None:
            return m.group(1)
    m = _INTERNATIONAL.fullmatch(digits)
    if m is not None and m.group(1)[0] != "1":
        digits = "0" + m.group(1)  # +86 21 6501 2345 is dialled 021-65012345 at home
    digits = digits.lstrip("+")

    if digits[:1] == "0":
        landline = _landline(digits)
        if landline is None and extension is None:
            # "021-65012345-123": the last dash group is an extension only when the rest is a
            # complete number, so "021-6501-2345" still reads as one number.
            m = _DASH_EXTENSION.fullmatch(s)
            if m is not None:
                landline = _landline(m.group(1).translate(_SEPARATORS))
                if landline is not None:
                    extension = m.group(2)
        if landline is None:
            raise PhoneError(_landline_problem(digits))
        return landline if extension is None else f"{landline}-{extension}"

    if extension is not None:
        raise PhoneError("Only a landline can have an extension; give the area code and number, "
                         "e.g. 021-65012345 转 123.")
    if digits[:1] == "1":
        if len(digits) != 11:
            raise PhoneError(f"A mobile number has 11 digits; this one has {len(digits)}.")
        raise PhoneError(f"A mobile number starts with 13 to 19; {digits[:2]} is not a mobile prefix.")
    if len(digits) in (7, 8):
        raise PhoneError("Add the area code to this landline number, e.g. 021-65012345 for Shanghai.")
    raise PhoneError("Not a mainland phone number: use an 11-digit mobile (13812345678) or a landline "
                     "with its area code (021-65012345).")


def _area_length(digits):
    # Only Beijing (010) and the 02x cities have 3-digit area codes; every other code has 4,
    # so the split between area code and local number is never ambiguous.
    return 3 if digits[1] in "12" else 4


def _landline(digits):
    """'021-65012345' from '02165012345', or None when the digits are not one landline."""
    if len(digits) < 10 or not digits.isdigit():
        return None
    n = _area_length(digits)
    local = digits[n:]
    # Local numbers never start with 0 or 1 (those are trunk and service prefixes), and
    # the cities with 3-digit area codes all have 8-digit local numbers.
    if local[0] in "01" or len(local) not in ((8,) if n == 3 else (7, 8)):
        return None
    return f"{digits[:n]}-{local}"


def _landline_problem(digits):
    if not digits.isdigit():
        return "A landline number has digits only, after an optional area code in brackets."
    if len(digits) < 3:
        return "The landline number is too short; give the area code and the 7 or 8 digit number."
    n = _area_length(digits)
    local = digits[n:]
    if n == 3:
        if len(local) != 8:
            return (f"Local numbers in area {digits[:n]} have 8 digits; this one has {len(local)}.")
    elif len(local) not in (7, 8):
        return (f"After the area code {digits[:n]} the local number should have 7 or 8 digits; "
                f"this one has {len(local)}.")
    if local[:1] in ("0", "1"):
        return f"A local number cannot start with {local[0]}; check the area code and number."
    return "Not a valid landline number."
