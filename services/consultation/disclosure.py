"""What a street's reason for escalating to the district must not carry: pure rules, no I/O.

The reason is the only free text that crosses from a street to the district (cases.py), so it is
read here before it leaves: an ID number (GB 11643, 18 characters or the old 15-digit form), a
mainland phone number (mobile, +86 or 0086 included, or a landline with its area code, written
with spaces or dashes between groups or not), or an address down to the room. A resident's name
cannot be told from the text alone; the registry is asked about that (`names_in`). Findings name
the kind of data only: the refusal must not repeat what it refuses.

The reading is deliberately wide: full-width and other compatibility digits count as digits,
invisible characters inside a number do not hide it, and a mistyped ID number (wrong check
character) still identifies a person.
"""
import re
import unicodedata
from datetime import date

from services.registry.identity import EARLIEST_BIRTH

ID_NUMBER = "contains an ID number"
PHONE = "contains a phone number"
ROOM = "contains an address down to the room"
NAME = "contains the name of a resident of this street"

_PROVINCES = frozenset([*map(str, range(11, 16)), *map(str, range(21, 24)), *map(str, range(31, 38)),
                        *map(str, range(41, 47)), *map(str, range(50, 55)), *map(str, range(61, 66)),
                        "71", "81", "82", "83", "91"])
# A run of digit groups: people write numbers whole or in groups ("139 1627 5318", "139-1627-5318").
_RUN = re.compile(r"[0-9Xx]+(?:[ \-][0-9Xx]+)*")
_MOBILE = re.compile(r"(?:0086|86)?1[3-9][0-9]{9}")
_LONGEST = 14  # 0086 and a mobile: no number looked for is longer (an ID number has 18, checked apart)

_N = "[0-9零〇一二三四五六七八九十百]"
_ROOMS = [re.compile(p) for p in (
    rf"{_N}+\s*室(?!\s*[0-9一二两三四五六七八九十]*\s*[厅厨卫])",              # 501室 (not 2室1厅, a layout)
    rf"{_N}+\s*(?:号楼|号|幢|栋|座)\s*{_N}+\s*(?:单元|门|号)\s*{_N}+",         # 3号楼2单元501
    r"[0-9]+\s*单元\s*[0-9]{3,4}(?![0-9])",                                  # 2单元501
    r"[0-9]+\s*(?:号楼|幢|栋)\s*[0-9]{3,4}(?![0-9年月日])",                    # 8号楼501
    r"(?<![0-9])[0-9]{1,3}\s*-\s*[0-9]{1,2}\s*-\s*[0-9]{3,4}(?![0-9])",      # 3-2-501
    r"(?<![0-9])[0-9]{3,4}\s*(?:房间|房(?![源屋价租产型]))",                    # 501房
)]


def plain(text):
    """Compatibility forms folded (full-width or mathematical digits are digits) and invisible
    characters (zero-width spaces, bidi marks, a byte-order mark) dropped, as a reader would see it."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(c for c in folded if unicodedata.category(c) not in ("Cf", "Cc") or c in "\n\t")


def findings(text):
    """What personal data the text carries, by kind (ID_NUMBER, PHONE, ROOM), in that order; [] if none."""
    s = plain(text)
    found = set()
    for run in _RUN.finditer(s):
        groups = re.split(r"[ \-]", run.group())
        for i in range(len(groups)):
            joined = ""
            for g in groups[i:]:
                joined += g
                if len(joined) > 18:
                    break
                kind = _number_kind(joined)
                if kind:
                    found.add(kind)
    if any(p.search(s) for p in _ROOMS):
        found.add(ROOM)
    return [k for k in (ID_NUMBER, PHONE, ROOM) if k in found]


def _number_kind(s):
    if len(s) == 18 and s[:17].isdigit() and s[17] in "0123456789Xx" and _id_like(s[:2], s[6:14]):
        return ID_NUMBER
    if not s.isdigit() or len(s) > _LONGEST and len(s) != 15:
        return None
    if len(s) == 15 and _id_like(s[:2], "19" + s[6:12]):
        return ID_NUMBER
    if _MOBILE.fullmatch(s) or _landline(s):
        return PHONE
    return None


def _id_like(province, ymd):
    if province not in _PROVINCES:
        return False
    try:
        born = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        return False
    return EARLIEST_BIRTH <= born <= date.today()


def _landline(s):
    # 010 and 02x have 3-digit area codes and 8-digit numbers; every other area code has 4 digits
    # and 7 or 8 digit numbers; local numbers never start with 0 or 1 (identity.normalize_phone).
    if s[:1] != "0" or len(s) < 10:
        return False
    n = 3 if s[1] in "12" else 4
    local = s[n:]
    return local[:1] not in ("0", "1", "") and len(local) in ((8,) if n == 3 else (7, 8))
