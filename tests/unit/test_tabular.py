"""Reading exported register CSVs, without touching the disk."""
from datetime import date

import pytest

from services.registry import tabular
from services.registry.tabular import FileProblem

HEADER = "姓名,公民身份号码,联系电话,社区代码"
ROW_1 = "张三,110101199003071234,13800138000,310110012001"
ROW_2 = "李四,11010119851212002X,,310110012001"
CSV = f"{HEADER}\r\n{ROW_1}\r\n{ROW_2}\r\n"


def rows(table):
    return list(table.rows)


def problem(data, kind="residents"):
    with pytest.raises(FileProblem) as caught:
        tabular.read(data, kind)
    return caught.value


# --- encodings -----------------------------------------------------------------

def test_utf8_with_bom():
    table = tabular.read(b"\xef\xbb\xbf" + CSV.encode("utf-8"), "residents")
    assert table.encoding == "utf-8-sig"
    assert table.columns == {"name": "姓名", "id_number": "公民身份号码", "phone": "联系电话",
                             "community_code": "社区代码"}
    assert rows(table) == [
        (2, {"name": "张三", "id_number": "110101199003071234", "phone": "13800138000",
             "community_code": "310110012001"}),
        (3, {"name": "李四", "id_number": "11010119851212002X", "phone": None,
             "community_code": "310110012001"}),
    ]


def test_plain_utf8():
    table = tabular.read(CSV.encode("utf-8"), "residents")
    assert table.encoding == "utf-8"
    assert [n for n, _row in table.rows] == [2, 3]


def test_gb18030():
    data = (HEADER + ",性别,住址\n" + ROW_1 + ",男,长海路1号\n").encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the test is only meaningful if UTF-8 fails
    table = tabular.read(data, "residents")
    assert table.encoding == "gb18030"
    assert table.ignored == ["住址"]
    assert rows(table)[0][1]["name"] == "张三"
    assert rows(table)[0][1]["sex"] == "男"


def test_utf16_tab_separated():
    text = HEADER.replace(",", "\t") + "\r\n" + ROW_1.replace(",", "\t") + "\r\n"
    table = tabular.read(text.encode("utf-16"), "residents")  # Python writes a BOM
    assert table.encoding == "utf-16"
    assert table.delimiter == "\t"
    assert rows(table) == [(2, {"name": "张三", "id_number": "110101199003071234",
                                "phone": "13800138000", "community_code": "310110012001"})]


def test_decode_reports_each_encoding():
    assert tabular.decode("a,b".encode("utf-16-be").join([b"\xfe\xff", b""])) == ("a,b", "utf-16")
    assert tabular.decode("姓名".encode("gbk")) == ("姓名", "gb18030")
    assert tabular.decode(b"\xef\xbb\xbf\xe5\xa7\x93") == ("姓", "utf-8-sig")


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"\xef\xbb\xbf \r\n", "empty"),
    (b"\xff\xff\xff\x80", "not UTF-8 or GB18030 text (unreadable bytes at position 0)"),
    (b"\xef\xbb\xbfab\xff", "not UTF-8 text (unreadable bytes at position 5)"),
    (b"PK\x03\x04rest-of-zip", ".xlsx"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", ".xls"),
    (b"a,b\x00c", "NUL"),
])
def test_unreadable_files(data, words):
    with pytest.raises(FileProblem) as caught:
        tabular.decode(data)
    assert words in caught.value.errors["_file"][0]
    assert str(caught.value) == caught.value.message


def test_file_problem_survives_pickling():
    import pickle
    copy = pickle.loads(pickle.dumps(FileProblem("bad", {"_file": ["bad"]})))
    assert (str(copy), copy.message, copy.errors) == ("bad", "bad", {"_file": ["bad"]})


# --- headers -------------------------------------------------------------------

def test_header_variants_are_normalised():
    header = "＊姓　名（必填）, *身份证号(必填) ,手机号码（选填）,出生日期(YYYY-MM-DD),所属社区,ＧＲＩＤ_ＣＯＤＥ,Unit,序号"
    table = tabular.read(f"{header}\n王五,310110199001011234,,1990-01-01,长海一村,,2,1\n".encode(),
                         "residents")
    assert table.columns == {
        "name": "＊姓　名（必填）", "id_number": "*身份证号(必填)", "phone": "手机号码（选填）",
        "birth_date": "出生日期(YYYY-MM-DD)", "community": "所属社区", "grid_code": "ＧＲＩＤ_ＣＯＤＥ",
        "unit": "Unit",
    }
    assert table.ignored == ["序号"]
    assert rows(table)[0] == (2, {"name": "王五", "id_number": "310110199001011234", "phone": None,
                                  "birth_date": "1990-01-01", "community": "长海一村",
                                  "grid_code": None, "unit": "2"})


def test_missing_required_columns_are_listed_together():
    error = problem("联系电话,性别,备注\n138,男,x\n".encode())
    assert error.errors == {"columns": [
        "missing required column 姓名 (name)",
        "missing required column 公民身份号码 (id_number)",
        "missing column 社区代码 (community_code) or 社区 (community); one of them is required",
    ]}
    assert "姓名 (name)" in error.message


def test_a_file_with_no_recognised_header_hints_at_title_rows():
    error = problem("长海一村居民花名册,,\n姓名,身份证号,社区\n".encode())
    assert "none of the column headers was recognised" in error.errors["columns"][-1]
    assert "长海一村居民花名册" in error.errors["columns"][-1]


def test_two_headers_for_the_same_key_are_refused():
    error = problem("姓名,身份证号,公民身份号码,社区\n".encode())
    assert error.errors == {"columns": [
        'columns "身份证号" and "公民身份号码" both mean id_number; keep only one of them'
    ]}


def test_party_members_need_only_the_id_number():
    header = "身份证号,党员类别,所在党组织,入党日期,报到日期,认领岗位,所属支部,楼组"
    row = "310110199001011234,退休党员,某某党委,１９８８.７.１,2024/3/5,楼道长,第一支部,3号楼组"
    table = tabular.read(f"{header}\n{row}\n".encode(), "party_members")
    assert rows(table) == [(2, {
        "id_number": "310110199001011234", "category": "退休党员", "membership_org": "某某党委",
        "joined_party": "1988.7.1", "reported_on": "2024/3/5", "posts": "楼道长",
        "branch": "第一支部", "group": "3号楼组",
    })]
    assert problem("姓名,党员类别\n".encode(), "party_members").errors == {
        "columns": ["missing required column 公民身份号码 (id_number)"]}


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError) as caught:
        tabular.read(CSV.encode(), "cats")
    assert not isinstance(caught.value, FileProblem)


def test_every_alias_maps_to_its_own_key():
    # Import already refuses an alias claimed by two keys; this checks none was lost.
    for kind, columns in tabular.KINDS.items():
        for key, (required, aliases) in columns.items():
            assert isinstance(required, bool) and aliases
            for alias in [key.upper(), *aliases]:
                assert tabular._LOOKUP[kind][tabular._normalise_header(f"*{alias}（必填）")] == key


# --- rows ----------------------------------------------------------------------

def test_blank_lines_are_skipped_but_counted():
    data = f"{HEADER}\n{ROW_1}\n\n,,,\n , \u3000,,\n{ROW_2}\n".encode()
    assert [(n, row["name"]) for n, row in tabular.read(data, "residents").rows] == [
        (2, "张三"), (6, "李四")]


def test_template_rows_with_only_a_serial_number_are_blank():
    data = f"序号,{HEADER}\n1,{ROW_1}\n2,,,,\n3,,,,\n4,{ROW_2}\n".encode()
    assert [n for n, _row in tabular.read(data, "residents").rows] == [2, 5]


def test_a_multiline_cell_is_one_spreadsheet_row():
    data = f'{HEADER},住址\n{ROW_1},"长海路\n1号"\n{ROW_2},x\n'.encode()
    assert [n for n, _row in tabular.read(data, "residents").rows] == [2, 3]


def test_extra_cells_are_reported_and_short_rows_padded():
    data = f"{HEADER}\n{ROW_1},多余,,\n张三,110101199003071234\n".encode()
    got = rows(tabular.read(data, "residents"))
    assert got[0][1]["_extra"] == ["多余"]
    assert got[1] == (3, {"name": "张三", "id_number": "110101199003071234", "phone": None,
                          "community_code": None})
    # Trailing empty separators alone are not worth a report.
    assert "_extra" not in rows(tabular.read(f"{HEADER}\n{ROW_1},,\n".encode(), "residents"))[0][1]


def test_apostrophe_and_fullwidth_in_marked_columns():
    data = ("姓名,身份证号,手机,社区代码,户号,楼号,备注\n"
            "\u00a0'O'Neil\u3000,'１１０１０１１９９００３０７１２３Ｘ, '13800138000,"
            "'310110012001,'0012,３幢,x\n").encode()
    (number, row), = rows(tabular.read(data, "residents"))
    assert number == 2
    assert row == {"name": "'O'Neil", "id_number": "11010119900307123X", "phone": "13800138000",
                   "community_code": "310110012001", "household_no": "0012", "building": "3幢"}


def test_names_are_not_nfkc_normalised():
    name = "李\u2f08明"  # a Kangxi radical that NFKC would replace
    data = f"姓名,身份证号,社区\n{name}，,310110199001011234,长海一村\n".encode()
    assert rows(tabular.read(data, "residents"))[0][1]["name"] == f"{name}，"


def test_data_under_a_column_without_header_is_extra():
    data = f"{HEADER},,\n{ROW_1},,孤儿值\n{ROW_2},,\n".encode()
    got = rows(tabular.read(data, "residents"))
    assert got[0][1]["_extra"] == ["", "孤儿值"]
    assert "_extra" not in got[1][1]


def test_semicolon_delimiter():
    data = HEADER.replace(",", ";") + "\n" + ROW_1.replace(",", ";") + "\n"
    table = tabular.read(data.encode(), "residents")
    assert table.delimiter == ";"
    assert rows(table)[0][1]["phone"] == "13800138000"


def test_excel_sep_line_sets_the_delimiter_and_is_not_a_row():
    data = "sep=;\n" + HEADER.replace(",", ";") + "\n" + ROW_1.replace(",", ";") + "\n"
    table = tabular.read(data.encode(), "residents")
    assert table.delimiter == ";"
    assert [n for n, _row in table.rows] == [2]


def test_excel_sep_line_may_name_any_delimiter():
    data = "sep=|\n" + HEADER.replace(",", "|") + "\n" + ROW_1.replace(",", "|") + "\n"
    assert rows(tabular.read(data.encode(), "residents"))[0][1]["id_number"] == "110101199003071234"


def test_rows_can_be_iterated_twice():
    table = tabular.read(CSV.encode(), "residents")
    assert rows(table) == rows(table)


def test_an_unclosed_quote_is_a_file_problem_with_a_row_number():
    data = (f'{HEADER}\n{ROW_1}\n"李四,1\n' + "x" * 200_000 + "\n").encode()
    table = tabular.read(data, "residents")
    with pytest.raises(FileProblem) as caught:
        rows(table)
    assert caught.value.errors["_file"][0].startswith("row 3:")


def test_an_empty_header_row_is_a_file_problem():
    assert "row 1 is empty" in problem(b",,\nx,y\n").errors["_file"][0]


# --- labels --------------------------------------------------------------------

@pytest.mark.parametrize("kind, text, code", [
    ("sex", "男", "M"), ("sex", "女性", "F"), ("sex", "m", "M"), ("sex", " Ｆ ", "F"),
    ("relation", "户主", "self"), ("relation", "丈夫", "spouse"), ("relation", "女儿", "child"),
    ("relation", "长子", "child"), ("relation", "母", "parent"), ("relation", "外孙女", "grandchild"),
    ("relation", "妹", "sibling"), ("relation", "其它", "other"), ("relation", "spouse", "spouse"),
    ("residence_type", "户籍人口", "registered"), ("residence_type", "常住", "permanent"),
    ("residence_type", "流动人口", "floating"), ("residence_type", "寄住", "lodging"),
    ("category", "在职党员", "on_the_job"), ("category", "退休", "retired"),
    ("category", "流动党员", "mobile"), ("category", "学生", "student"),
    ("tags", "独居老人", "elderly_alone"),
])
def test_code_for_known_labels(kind, text, code):
    assert tabular.code_for(kind, text) == code


def test_code_for_unknown_labels_and_kinds():
    assert tabular.code_for("sex", "未知") is None
    assert tabular.code_for("relation", None) is None
    assert tabular.code_for("relation", "") is None
    with pytest.raises(ValueError):
        tabular.code_for("colour", "红")


def test_split_tags_with_mixed_separators_and_unknowns():
    codes, unknown = tabular.split_tags("独居老人、残疾，低保户;退役军人 / 课后看护|空巢老人；重点优抚对象　独居 五保户")
    assert codes == ["elderly_alone", "disabled", "low_income", "veteran", "after_school_child",
                     "empty_nest_elderly", "special_care"]
    assert unknown == ["五保户"]
    assert tabular.split_tags(None) == ([], [])
    assert tabular.split_tags("  ") == ([], [])


def test_post_labels_cover_the_service_posts():
    from services.registry import party_rules
    assert set(tabular.POSTS.values()) == set(party_rules.POSTS)
    for code, label in party_rules.POSTS.items():
        assert tabular.code_for("posts", label) == code
    codes, unknown = tabular.split_tags("治安巡逻、政策宣传，志愿服务 治安巡逻；跳广场舞", "posts")
    assert codes == ["security_patrol", "policy_outreach", "volunteer"] and unknown == ["跳广场舞"]
    assert tabular.split_tags("security_patrol", "posts") == (["security_patrol"], [])


# --- dates ---------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "2024-03-05", "2024/3/5", "2024.3.5", "20240305", "2024年3月5日", "2024年03月05",
    "２０２４－０３－０５", " 2024/3/5 0:00 ", "2024-03-05 00:00:00",
])
def test_parse_date_formats(text):
    assert tabular.parse_date(text) == date(2024, 3, 5)


@pytest.mark.parametrize("text", [
    "2024-02-30", "2024-3/5", "05/03/2024", "2024-03", "45356", "", "明天", "2024031",
])
def test_parse_date_errors(text):
    with pytest.raises(ValueError) as caught:
        tabular.parse_date(text)
    assert str(caught.value).endswith("expected YYYY-MM-DD")
