"""Reading resident and party-member registers exported from Excel/WPS as CSV.

Turns the bytes of an uploaded file into rows keyed by canonical column names,
whatever encoding, delimiter and header wording the community office used.
Values are only cleaned up textually here; validating them is the importer's job.
Also holds the label → code maps the importer uses for Chinese cell values.
"""
import codecs
import csv
import io
import re
import unicodedata
from datetime import date
from operator import itemgetter

from shared.errors import ValidationFailed

__all__ = [
    "FileProblem", "KINDS", "Table", "decode", "read",
    "SEX", "RELATION", "RESIDENCE_TYPE", "TAGS", "CATEGORY", "POSTS", "LABELS",
    "code_for", "split_tags", "parse_date",
]


class FileProblem(ValidationFailed, ValueError):
    """The file as a whole cannot be read; .errors is {field: [messages]} e.g. {"_file": [...]} or {"columns": [...]}

    A refusal (422) wherever it surfaces; message and errors are its args, so it survives pickling and RPC.
    """

    @property
    def errors(self):
        return self.fields


# canonical key -> (required, accepted header aliases); the first alias is the one
# named in messages, so it is the wording of the national/most common template.
_NAME = (True, ["姓名", "居民姓名", "名字", "人员姓名"])
_ID_NUMBER = (True, ["公民身份号码", "身份证号", "身份证号码", "证件号码", "身份证",
                     "身份证件号码", "公民身份证号码", "居民身份证号码", "证件号", "身份号码"])
_PHONE = (False, ["联系电话", "手机号", "手机号码", "手机", "电话", "联系方式", "电话号码",
                  "移动电话", "联系号码"])

KINDS = {
    "residents": {
        "name": _NAME,
        "id_number": _ID_NUMBER,
        "phone": _PHONE,
        "sex": (False, ["性别"]),
        # 出生年月 is deliberately absent: it usually holds only year and month.
        "birth_date": (False, ["出生日期", "出生年月日", "生日", "出生时间"]),
        "community_code": (False, ["社区代码", "居委会代码", "社区编码", "社区编号", "居委会编码"]),
        "community": (False, ["社区", "居委会", "所属社区", "社区名称", "居委", "居委会名称",
                              "社区居委会", "所属居委会"]),
        "grid_code": (False, ["网格代码", "网格编码", "网格", "网格编号", "所属网格"]),
        "building": (False, ["楼号", "楼栋", "幢", "楼", "楼栋号", "幢号", "栋", "栋号", "楼幢",
                             "楼幢号"]),
        "unit": (False, ["单元", "单元号"]),
        "room": (False, ["室号", "房号", "室", "门牌号", "房间号", "房屋号", "户室号", "房间"]),
        "household_no": (False, ["户号", "户编号", "户编码"]),
        "relation": (False, ["与户主关系", "关系", "与户主的关系", "家庭关系", "户主关系"]),
        "residence_type": (False, ["居住类型", "人口类型", "户籍类型", "居住性质", "人口性质",
                                   "人口类别"]),
        "tags": (False, ["标签", "特殊人群", "关爱标签", "人员标签", "重点人群", "特殊人群类别",
                         "人群类别"]),
        "moved_in": (False, ["入住日期", "迁入日期", "居住起始日期", "入住时间", "迁入时间"]),
    },
    "party_members": {
        "id_number": _ID_NUMBER,
        "name": (False, _NAME[1] + ["党员姓名"]),
        "phone": _PHONE,
        "category": (False, ["党员类别", "类别", "人员类别", "党员类型", "党员身份"]),
        "membership_org": (False, ["组织关系所在党组织", "所在党组织", "党组织关系",
                                   "关系所在党组织", "所在党组织名称", "组织关系所在地"]),
        "joined_party": (False, ["入党日期", "入党时间"]),
        "reported_on": (False, ["报到日期", "报到时间", "社区报到日期", "报到社区日期"]),
        "posts": (False, ["服务岗位", "认领岗位", "岗位", "志愿服务岗位", "认领服务岗位"]),
        "branch": (False, ["所属支部", "党支部", "支部", "所在支部", "所属党支部"]),
        "group": (False, ["楼组", "党小组", "楼组党小组", "所属党小组", "所在党小组"]),
    },
}

# Values that are ASCII by nature: a Chinese IME left in full-width mode types
# "３" or "Ｘ", and folding those spares the clerk a rejected row.
_FOLDED = frozenset({"birth_date", "moved_in", "joined_party", "reported_on",
                     "building", "unit", "room"})
# Numeric-looking text that Excel would otherwise turn into a number (losing leading
# zeros or digits past 15) is typed with a leading ' ; WPS and some exports keep it.
_MARKED = frozenset({"id_number", "phone", "community_code", "grid_code", "household_no"})

# str.strip() with no argument misses zero-width characters and stray BOMs, which
# arrive when cells are pasted from web pages or chat apps.
_WS = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
       "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # every str.isspace()
       "\u200b\u200c\u200d\u2060\ufeff")
# Stripping every leading/trailing ' rather than exactly one keeps this a single C
# call; an ID, phone or code never legitimately starts or ends with one.
_WS_AND_MARK = _WS + "'"
_WS_RE = re.compile("[%s]+" % re.escape(_WS))
_NOT_BLANK = re.compile("[^%s]" % re.escape(_WS)).search
# Full-width ASCII (U+FF01..U+FF5E) → ASCII; narrower than NFKC on purpose.
_FULLWIDTH = {0xFF01 + i: 0x21 + i for i in range(94)}
_HAS_FULLWIDTH = re.compile("[\uff01-\uff5e]").search

_BRACKETED_SUFFIX = re.compile(r"[(\[【〔<《][^()\[\]【】〔〕<>《》]*[)\]】〕>》]$")
_MARKERS = "*※:"


def _normalise_header(header):
    text = _WS_RE.sub("", unicodedata.normalize("NFKC", header))
    while True:
        before = text
        text = _BRACKETED_SUFFIX.sub("", text.strip(_MARKERS))
        if text == before:
            return text.lower()


def _build_lookup(columns):
    lookup = {}
    for key, (_required, aliases) in columns.items():
        for alias in [key, *aliases]:
            norm = _normalise_header(alias)
            if lookup.setdefault(norm, key) != key:
                raise RuntimeError(f"alias {alias!r} is claimed by both {lookup[norm]} and {key}")
    return lookup


_LOOKUP = {kind: _build_lookup(columns) for kind, columns in KINDS.items()}

_SAVE_AS = 'save it from Excel/WPS with "Save As" → "CSV UTF-8 (逗号分隔)(*.csv)"'


def _problem(message):
    return FileProblem(message, {"_file": [message]})


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding name) for an exported CSV, or raise FileProblem."""
    data = bytes(data)
    if data.startswith(codecs.BOM_UTF8):
        label, candidates = "UTF-8", [("utf-8-sig", len(codecs.BOM_UTF8), "utf-8")]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        label, candidates = "UTF-16", [("utf-16", 0, "utf-16")]
    elif data.startswith(b"PK\x03\x04"):
        raise _problem(f"this is an Excel workbook (.xlsx), not a CSV file; {_SAVE_AS}")
    elif data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise _problem(f"this is an old Excel workbook (.xls), not a CSV file; {_SAVE_AS}")
    else:
        # GBK/GB18030 text with Chinese in it is practically never valid UTF-8,
        # so trying UTF-8 first cannot mistake one for the other.
        label, candidates = "UTF-8 or GB18030", [("utf-8", 0, "utf-8"), ("gb18030", 0, "gb18030")]
    for name, skip, codec in candidates:
        try:
            text = data[skip:].decode(codec)
            break
        except UnicodeDecodeError as exc:
            position = skip + exc.start
    else:
        raise _problem(f"the file is not {label} text (unreadable bytes at position {position}); "
                       f"{_SAVE_AS}")
    if "\x00" in text:
        raise _problem("the file contains NUL characters: it is binary data or UTF-16 without a "
                       f"byte-order mark, not CSV text; {_SAVE_AS}")
    if not _NOT_BLANK(text):
        raise _problem("the file is empty")
    return text, name


_DELIMITERS = (",", "\t", ";")
_HEAD = 65536  # enough for any real header row; spares copying the whole file
_SEP_LINE = re.compile(r"sep=(.)\r?\n")


def _sniff(text, encoding):
    """Pick the delimiter that splits the header row into the most cells."""
    # Excel's "Unicode text" export is tab-separated, so prefer tabs on a tie there.
    order = ("\t", ",", ";") if encoding == "utf-16" else _DELIMITERS
    head = text[:_HEAD]
    best, best_width = order[0], 1
    for delimiter in order:
        width = len(next(csv.reader(io.StringIO(head), delimiter=delimiter), []))
        if width > best_width:
            best, best_width = delimiter, width
    return best


class Table:
    """A decoded register: header mapping now, rows lazily (re-iterable via .rows)."""

    def __init__(self, text, encoding, delimiter, skip, columns, ignored, indices, marked, folded,
                 width):
        self.encoding = encoding
        self.delimiter = delimiter
        self.columns = columns
        self.ignored = ignored
        self._text = text
        self._skip = skip
        # (key, cell index, characters to strip) in header order.
        self._plan = [(key, index, _WS_AND_MARK if key in marked else _WS)
                      for key, index in indices.items()]
        # (key, characters to strip once folded) for columns folded to ASCII.
        # One scan of the file spares a check on every row when, as usual, it
        # holds no full-width ASCII at all.
        if not _HAS_FULLWIDTH(text):
            folded = []
        self._folded = ([(key, _WS_AND_MARK if key in marked else _WS) for key in folded],
                        _getter([indices[key] for key in folded]))
        self._width = width

    @property
    def rows(self):
        return self._iter_rows()

    def _iter_rows(self):
        reader = csv.reader(io.StringIO(self._text), delimiter=self.delimiter)
        for _ in range(self._skip + 1):
            next(reader)
        width, ws, fullwidth, has_fullwidth = self._width, _WS, _FULLWIDTH, _HAS_FULLWIDTH
        plan, (folded, get_folded) = self._plan, self._folded
        number = 1
        try:
            # Numbering by records, not physical lines: a quoted cell with a line
            # break (Alt+Enter) is still one spreadsheet row.
            for number, cells in enumerate(reader, 2):
                count = len(cells)
                if count < width:
                    if not count:
                        continue
                    cells += [""] * (width - count)
                # A single comprehension over the columns is the fastest way to
                # build the row in CPython; per-cell helper calls doubled the time.
                row = {key: cells[i].strip(chars) or None for key, i, chars in plan}
                if folded and has_fullwidth("".join(get_folded(cells))):
                    for key, chars in folded:
                        value = row[key]
                        if value and has_fullwidth(value):
                            row[key] = value.translate(fullwidth).strip(chars) or None
                if count > width:
                    extra = [cell.strip(ws) for cell in cells[width:]]
                    while extra and not extra[-1]:
                        extra.pop()  # trailing separators carry nothing to report
                    if extra:
                        row["_extra"] = extra
                        yield number, row
                        continue
                # Also skips template rows where only 序号 or another unmapped
                # column was pre-filled: nothing there to import.
                if any(row.values()):
                    yield number, row
        except csv.Error as exc:
            raise _problem(f"row {number + 1}: the CSV cannot be split into cells ({exc}); "
                           "probably an unclosed double quote (\") from this row on") from exc


def _getter(indices):
    # itemgetter of one index returns the item, not a 1-tuple.
    if not indices:
        return lambda cells: ()
    if len(indices) == 1:
        index = indices[0]
        return lambda cells: (cells[index],)
    return itemgetter(*indices)


def read(data: bytes, kind: str) -> Table:
    """Decode `data`, map its header row onto KINDS[kind]; raise FileProblem if unusable."""
    if kind not in KINDS:
        raise ValueError(f"unknown register kind {kind!r}; expected one of {sorted(KINDS)}")
    text, encoding = decode(data)
    skip = 0
    sep = _SEP_LINE.match(text)
    if sep and sep.group(1) not in '"\r\n':
        # Excel's "sep=;" directive line is not shown as a row in Excel itself.
        delimiter, skip = sep.group(1), 1
    else:
        delimiter = _sniff(text, encoding)
    reader = csv.reader(io.StringIO(text[:_HEAD]), delimiter=delimiter)
    try:
        for _ in range(skip):
            next(reader)
        header = [cell.strip(_WS) for cell in next(reader, [])]
    except csv.Error as exc:
        raise _problem(f"row 1: the header row cannot be split into cells ({exc})") from exc
    if not any(header):
        raise _problem("row 1 is empty; the first row must hold the column headers")
    # Cells beyond the last named column have no header, so anything in them is
    # reported as extra rather than silently dropped.
    while not header[-1]:
        header.pop()

    definition, lookup = KINDS[kind], _LOOKUP[kind]
    seen = {}
    ignored = []
    for index, original in enumerate(header):
        key = lookup.get(_normalise_header(original)) if original else None
        if key is None:
            if original:
                ignored.append(original)
        else:
            seen.setdefault(key, []).append((index, original))

    messages = []
    for key, (required, aliases) in definition.items():
        if required and key not in seen:
            messages.append(f"missing required column {aliases[0]} ({key})")
    if "community_code" in definition and not seen.keys() & {"community_code", "community"}:
        code_alias, name_alias = definition["community_code"][1][0], definition["community"][1][0]
        messages.append(f"missing column {code_alias} (community_code) or {name_alias} "
                        "(community); one of them is required")
    for key, found in seen.items():
        if len(found) > 1:
            names = [f'"{original}"' for _i, original in found]
            listed = ", ".join(names[:-1]) + " and " + names[-1]
            quantifier = "both" if len(names) == 2 else "all"
            messages.append(f"columns {listed} {quantifier} mean {key}; keep only one of them")
    if not seen:
        shown = ", ".join(h for h in header if h)[:120]
        messages.append(f"none of the column headers was recognised (row 1 holds: {shown}); "
                        "row 1 must hold the column headers, so remove any title rows above "
                        "them, and check the file was saved as CSV")
    if messages:
        raise FileProblem(f"the file cannot be read as a {kind} register: " + "; ".join(messages),
                          {"columns": messages})

    columns = {key: found[0][1] for key, found in seen.items()}
    indices = {key: found[0][0] for key, found in seen.items()}
    marked = [key for key in seen if key in _MARKED or key.endswith("_code")]
    folded = [key for key in seen if key in _FOLDED or key in marked]
    return Table(text, encoding, delimiter, skip, columns, ignored, indices, marked, folded,
                 len(header))


# --- label → code maps -------------------------------------------------------
# Keys are matched after NFKC + whitespace removal + lower-casing, so "男 ", "Ｍ"
# and "m" all hit. Every map also accepts its own codes, for re-imported exports.

SEX = {"男": "M", "男性": "M", "m": "M", "male": "M",
       "女": "F", "女性": "F", "f": "F", "female": "F"}

RELATION = {
    "本人": "self", "户主": "self", "户主本人": "self",
    "配偶": "spouse", "妻": "spouse", "夫": "spouse", "妻子": "spouse", "丈夫": "spouse",
    "子": "child", "女": "child", "子女": "child", "儿子": "child", "女儿": "child",
    # The 户口簿 wording for children.
    "长子": "child", "次子": "child", "三子": "child", "长女": "child", "次女": "child",
    "三女": "child", "独生子": "child", "独生女": "child",
    "父母": "parent", "父亲": "parent", "母亲": "parent", "父": "parent", "母": "parent",
    "孙子": "grandchild", "孙女": "grandchild", "孙子女": "grandchild", "外孙": "grandchild",
    "外孙女": "grandchild", "外孙子": "grandchild",
    "兄弟姐妹": "sibling", "兄": "sibling", "弟": "sibling", "姐": "sibling", "妹": "sibling",
    "哥哥": "sibling", "弟弟": "sibling", "姐姐": "sibling", "妹妹": "sibling",
    "其他": "other", "其它": "other", "儿媳": "other", "女婿": "other",
    "岳父": "other", "岳母": "other", "公公": "other", "婆婆": "other",
}

RESIDENCE_TYPE = {
    "户籍": "registered", "户籍人口": "registered", "户籍人员": "registered",
    "常住": "permanent", "常住人口": "permanent", "常住人员": "permanent",
    "流动": "floating", "流动人口": "floating", "流动人员": "floating",
    "寄住": "lodging", "寄住人口": "lodging", "寄住人员": "lodging",
}

TAGS = {
    "独居老人": "elderly_alone", "独居": "elderly_alone",
    "残疾人": "disabled", "残疾": "disabled", "残障人士": "disabled",
    "低保": "low_income", "低保户": "low_income", "低保家庭": "low_income", "低保对象": "low_income",
    "退役军人": "veteran", "复员军人": "veteran", "退伍军人": "veteran",
    "课后看护儿童": "after_school_child", "课后看护": "after_school_child",
    "空巢老人": "empty_nest_elderly", "空巢": "empty_nest_elderly",
    "重点优抚对象": "special_care", "优抚对象": "special_care",
}

CATEGORY = {
    "在职": "on_the_job", "在职党员": "on_the_job",
    "退休": "retired", "退休党员": "retired", "离退休": "retired", "离退休党员": "retired",
    "流动": "mobile", "流动党员": "mobile",
    "学生": "student", "学生党员": "student",
}

# The service posts (岗位) of party_rules.POSTS, with the shorter or older wordings of the
# claim forms (认领表) communities hand out.
POSTS = {
    "楼组联络": "building_liaison", "楼组联络员": "building_liaison", "楼道联络": "building_liaison",
    "治安巡逻": "security_patrol", "平安巡逻": "security_patrol", "巡逻": "security_patrol",
    "环境整治": "environment", "环境卫生": "environment", "环境保护": "environment",
    "政策宣传": "policy_outreach", "政策宣讲": "policy_outreach", "宣传": "policy_outreach",
    "关爱帮困": "care_visits", "帮困": "care_visits", "结对帮困": "care_visits", "关爱走访": "care_visits",
    "文明劝导": "civility", "文明引导": "civility",
    "议事协商": "consultation", "协商议事": "consultation", "议事": "consultation",
    "志愿服务": "volunteer", "志愿者": "volunteer",
}

LABELS = {"sex": SEX, "relation": RELATION, "residence_type": RESIDENCE_TYPE,
          "tags": TAGS, "category": CATEGORY, "posts": POSTS}


def _label_key(text):
    return _WS_RE.sub("", unicodedata.normalize("NFKC", text)).lower()


def _with_codes(mapping):
    lookup = {_label_key(label): code for label, code in mapping.items()}
    for code in set(mapping.values()):
        lookup.setdefault(_label_key(code), code)
    return lookup


_LABEL_LOOKUP = {name: _with_codes(mapping) for name, mapping in LABELS.items()}


def code_for(kind_of_value: str, text: str | None) -> str | None:
    """The code for a cell label, e.g. code_for("relation", "户主") == "self"; None if unknown."""
    try:
        lookup = _LABEL_LOOKUP[kind_of_value]
    except KeyError:
        raise ValueError(f"unknown kind of value {kind_of_value!r}; expected one of "
                         f"{sorted(LABELS)}") from None
    if not text:
        return None
    return lookup.get(_label_key(text))


# NFKC first turns ，；｜／ and the full-width space into their ASCII forms.
_TAG_SEPARATORS = re.compile(r"[、,;|/\s\u200b\ufeff]+")


def split_tags(text: str | None, kind_of_value: str = "tags") -> tuple[list[str], list[str]]:
    """(codes, unknown labels) for a cell holding several labels (tags, posts), codes de-duplicated in order."""
    codes, unknown = [], []
    if not text:
        return codes, unknown
    lookup = _LABEL_LOOKUP[kind_of_value]
    for label in _TAG_SEPARATORS.split(unicodedata.normalize("NFKC", text)):
        if not label:
            continue
        code = lookup.get(label.lower())
        if code is None:
            unknown.append(label)
        elif code not in codes:
            codes.append(code)
    return codes, unknown


# Excel writes date-formatted cells as "2024/3/5 0:00" when the format includes a
# time, so a trailing time of day is accepted and ignored.
_DATE = re.compile(
    r"(?:(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"
    r"|(\d{4})(\d{2})(\d{2})"
    r"|(\d{4})年(\d{1,2})月(\d{1,2})[日号]?)"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?",
    re.ASCII,
)


def parse_date(text: str) -> date:
    """2024-03-05, 2024/3/5, 2024.3.5, 20240305 or 2024年3月5日 → date; ValueError otherwise."""
    cleaned = (text or "").translate(_FULLWIDTH).strip(_WS)
    match = _DATE.fullmatch(cleaned)
    if match is None:
        raise ValueError(f'"{cleaned}" is not a date; expected YYYY-MM-DD')
    g = match.groups()
    year, month, day = (g[0], g[2], g[3]) if g[0] else (g[4], g[5], g[6]) if g[4] else g[7:10]
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise ValueError(f'"{cleaned}" is not a real calendar date; expected YYYY-MM-DD') from None
