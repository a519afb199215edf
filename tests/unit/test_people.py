"""Generated demo residents: valid, unique, consistent households, exportable as CSV."""
import csv
from collections import Counter, defaultdict
from datetime import date

import pytest

from linli.demo import people
from linli.demo.people import CSV_HEADERS, generate, to_csv_row, write_csv
from services.registry.identity import age_on, check_agreement, normalize_phone, parse_id_number

TODAY = date(2026, 11, 23)
COMMUNITIES = [
    {"code": "310110012001", "name": "长海一村居委会", "estate": "长海一村",
     "grids": ["310110012001001", "310110012001002"]},
    {"code": "310110012002", "name": "长海二村居委会", "estate": "长海二村", "grids": []},
    {"code": "310110012003", "name": "民星一村居委会", "estate": "民星一村", "grids": ["310110012003001"]},
]
KEYS = {"name", "id_number", "phone", "sex", "birth_date", "community_code", "grid_code", "building", "unit",
        "room", "household_no", "relation", "residence_type", "tags", "moved_in"}
RELATIONS = {"self", "spouse", "child", "parent", "grandchild", "sibling", "other"}
RESIDENCE = {"registered", "permanent", "floating", "lodging"}
TAGS = {"elderly_alone", "disabled", "low_income", "veteran", "after_school_child"}


@pytest.fixture(scope="module")
def crowd():
    return list(generate(5000, COMMUNITIES, seed=2026, today=TODAY))


def households(crowd):
    by_household = defaultdict(list)
    for person in crowd:
        by_household[person["household_no"]].append(person)
    return by_household


def test_exact_count_and_keys(crowd):
    assert len(crowd) == 5000
    assert all(set(p) == KEYS for p in crowd)
    assert list(generate(0, COMMUNITIES, today=TODAY)) == []
    assert len(list(generate(7, COMMUNITIES, today=TODAY))) == 7


def test_deterministic_for_a_seed(crowd):
    assert list(generate(5000, COMMUNITIES, seed=2026, today=TODAY)) == crowd
    other = list(generate(5000, COMMUNITIES, seed=2027, today=TODAY))
    assert [p["id_number"] for p in other] != [p["id_number"] for p in crowd]


def test_every_id_number_is_valid_and_agrees(crowd):
    for p in crowd:
        info = parse_id_number(p["id_number"], TODAY)
        assert info.number == p["id_number"]
        assert info.sex == p["sex"]
        assert info.birth_date == p["birth_date"]
        assert check_agreement(info, p["sex"], p["birth_date"]) == {}


def test_id_numbers_phones_and_households_are_unique(crowd):
    ids = [p["id_number"] for p in crowd]
    assert len(set(ids)) == len(ids)
    phones = [p["phone"] for p in crowd if p["phone"] is not None]
    assert len(set(phones)) == len(phones)
    heads = [p["household_no"] for p in crowd if p["relation"] == "self"]
    assert len(set(heads)) == len(heads) == len(households(crowd))


def test_phones_are_already_normalised(crowd):
    phones = [p["phone"] for p in crowd if p["phone"] is not None]
    assert all(normalize_phone(phone) == phone for phone in phones)
    assert any(phone.startswith("021-6") and len(phone) == 12 for phone in phones)
    assert any(p["phone"] is None and age_on(p["birth_date"], TODAY) < 12 for p in crowd)
    assert all(p["phone"] is None for p in crowd if age_on(p["birth_date"], TODAY) < 12)


def test_households_of_one_to_five_with_one_head(crowd):
    for number, members in households(crowd).items():
        assert 1 <= len(members) <= 5
        assert [m["relation"] for m in members].count("self") == 1
        assert members[0]["relation"] == "self"
        assert number.startswith("H" + members[0]["community_code"] + "-")
        assert len(number) == len("H310110012001-000123")
        place = {(m["community_code"], m["grid_code"], m["building"], m["unit"], m["room"]) for m in members}
        assert len(place) == 1
    assert {len(m) for m in households(crowd).values()} == {1, 2, 3, 4, 5}


def test_one_household_per_room(crowd):
    room_households = defaultdict(set)
    for p in crowd:
        room_households[p["community_code"], p["building"], p["unit"], p["room"]].add(p["household_no"])
    assert all(len(h) == 1 for h in room_households.values())


def test_addresses_look_like_an_estate(crowd):
    for p in crowd:
        building = int(p["building"].removesuffix("号"))
        assert 1 <= building <= 60  # 5,000 people in 3 communities fit in one block each
        assert p["unit"] in {f"{u}单元" for u in range(1, 7)}
        assert p["room"] in {f"{f}0{d}" for f in range(1, 7) for d in (1, 2)}


def test_grids_belong_to_the_community(crowd):
    grids = {c["code"]: c["grids"] for c in COMMUNITIES}
    for p in crowd:
        if grids[p["community_code"]]:
            assert p["grid_code"] in grids[p["community_code"]]
        else:
            assert p["grid_code"] is None
    assert {p["community_code"] for p in crowd} == set(grids)


def test_a_crowded_community_gets_more_buildings_not_shared_rooms():
    crowd = list(generate(12000, COMMUNITIES[:1], seed=5, today=TODAY))
    rooms = {(p["building"], p["unit"], p["room"]) for p in crowd}
    assert len(rooms) == len(households(crowd)) > 60 * 72
    assert max(int(p["building"].removesuffix("号")) for p in crowd) > 60


def test_codes_are_from_the_lists(crowd):
    assert {p["relation"] for p in crowd} == RELATIONS
    assert {p["residence_type"] for p in crowd} == RESIDENCE
    assert {t for p in crowd for t in p["tags"]} == TAGS
    assert {p["sex"] for p in crowd} == {"M", "F"}


def test_elderly_alone_exactly_on_single_elders(crowd):
    for members in households(crowd).values():
        for m in members:
            single_elder = len(members) == 1 and age_on(m["birth_date"], TODAY) >= 60
            assert ("elderly_alone" in m["tags"]) == single_elder


def test_low_income_covers_the_household(crowd):
    for members in households(crowd).values():
        family = [m for m in members if m["relation"] != "other"]
        flags = {"low_income" in m["tags"] for m in family}
        assert len(flags) == 1


def test_after_school_children_are_6_to_12(crowd):
    ages = [age_on(p["birth_date"], TODAY) for p in crowd if "after_school_child" in p["tags"]]
    assert ages and all(6 <= a <= 12 for a in ages)


def test_shares_are_plausible(crowd):
    n = len(crowd)
    ages = [age_on(p["birth_date"], TODAY) for p in crowd]
    assert 0.28 < sum(a >= 60 for a in ages) / n < 0.40
    assert 0.02 < sum(a >= 80 for a in ages) / n < 0.08
    assert 0.08 < sum(a < 18 for a in ages) / n < 0.20
    residence = Counter(p["residence_type"] for p in crowd)
    assert 0.58 < residence["registered"] / n < 0.72
    assert 0.10 < residence["permanent"] / n < 0.20
    assert 0.12 < residence["floating"] / n < 0.22
    assert 0.01 < residence["lodging"] / n < 0.06
    tags = Counter(t for p in crowd for t in p["tags"])
    assert all(0.005 < tags[t] / n < 0.08 for t in TAGS)


def test_registered_residents_mostly_born_in_shanghai_floating_mostly_not(crowd):
    registered = [p for p in crowd if p["residence_type"] == "registered"]
    floating = [p for p in crowd if p["residence_type"] == "floating"]
    assert sum(p["id_number"].startswith("31") for p in registered) / len(registered) > 0.8
    assert sum(not p["id_number"].startswith("31") for p in floating) / len(floating) > 0.8


def test_dates_are_sane(crowd):
    for p in crowd:
        assert p["birth_date"] <= p["moved_in"] <= TODAY


def test_names_look_chinese(crowd):
    assert all(2 <= len(p["name"]) <= 4 for p in crowd)
    surnames = Counter(p["name"][0] for p in crowd)
    assert {s for s, _ in surnames.most_common(6)} <= {"王", "李", "张", "刘", "陈", "杨", "徐", "周"}


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate(-1, COMMUNITIES)
    with pytest.raises(ValueError):
        generate(5, [])
    with pytest.raises(ValueError):
        generate(5, [COMMUNITIES[0], COMMUNITIES[0]])


# --- CSV ----------------------------------------------------------------------------------------

def test_csv_row_labels():
    person = {"name": "王秀英", "id_number": "11010519491231002X", "phone": None, "sex": "F",
              "birth_date": date(1949, 12, 31), "community_code": "310110012001", "grid_code": None,
              "building": "12号", "unit": "2单元", "room": "302", "household_no": "H310110012001-000123",
              "relation": "parent", "residence_type": "lodging", "tags": ["elderly_alone", "low_income"],
              "moved_in": date(1998, 3, 1)}
    assert to_csv_row(person) == ["王秀英", "11010519491231002X", "女", "1949-12-31", "", "310110012001", "",
                                  "12号", "2单元", "302", "H310110012001-000123", "父母", "寄住",
                                  "独居老人、低保", "1998-03-01"]
    assert len(CSV_HEADERS) == len(to_csv_row(person))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_csv_round_trip(tmp_path, crowd, encoding):
    path = tmp_path / "people.csv"
    assert write_csv(path, crowd[:500], encoding=encoding) == 500
    with open(path, encoding=encoding, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CSV_HEADERS
    assert rows[1:] == [to_csv_row(p) for p in crowd[:500]]


def test_every_row_encodes_in_gb18030_and_gbk(crowd):
    for p in crowd:
        text = ",".join(to_csv_row(p))
        text.encode("gb18030")
        text.encode("gbk")  # the older encoding some district tools still read
    ",".join(CSV_HEADERS).encode("gbk")


def test_label_tables_cover_every_code():
    assert set(people.RELATION_LABELS) == RELATIONS
    assert set(people.RESIDENCE_LABELS) == RESIDENCE
    assert set(people.TAG_LABELS) == TAGS
