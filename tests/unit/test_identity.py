"""Citizen ID numbers (GB 11643-1999) and phone numbers, without a database."""
import random
from datetime import date

import pytest

from services.registry import identity
from services.registry.identity import (
    IdInfo, IdNumberError, PhoneError, age_band, age_on, check_agreement, check_character,
    normalize_phone, normalize_text, parse_id_number,
)

TODAY = date(2026, 11, 23)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def reference_check_character(first17):
    """The standard's formula written out plainly, to hold the fast one to."""
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def error(raw):
    with pytest.raises(IdNumberError) as exc:
        parse_id_number(raw, TODAY)
    return str(exc.value)


# --- the standard's examples ---------------------------------------------------------------

def test_standard_example_female_1949():
    info = parse_id_number("11010519491231002X", TODAY)
    assert info == IdInfo("11010519491231002X", "110105", date(1949, 12, 31), "F")


def test_standard_example_male_1880_is_inside_the_lower_bound():
    info = parse_id_number("440524188001010014", TODAY)
    assert info == IdInfo("440524188001010014", "440524", date(1880, 1, 1), "M")


def test_lower_bound_is_1850():
    assert identity.EARLIEST_BIRTH == date(1850, 1, 1)
    first17 = "11010518500101001"
    assert parse_id_number(first17 + check_character(first17), TODAY).birth_date == date(1850, 1, 1)
    first17 = "11010518491231001"
    message = error(first17 + check_character(first17))
    assert message == "The birth date in the ID number (1849-12-31) is before 1850-01-01."


@pytest.mark.parametrize("first17, expected", [
    ("11010519491231002", "X"), ("44052418800101001", "4"), ("31011019570522296", reference_check_character("31011019570522296")),
])
def test_check_character(first17, expected):
    assert check_character(first17) == expected


@pytest.mark.parametrize("bad", ["1101051949123100", "110105194912310021", "1101051949123100X", "１１０１０５１９４９１２３１００２"])
def test_check_character_wants_17_ascii_digits(bad):
    with pytest.raises(IdNumberError):
        check_character(bad)


def test_fast_check_character_matches_the_weights_on_random_numbers():
    rng = random.Random(11643)
    for _ in range(2000):
        first17 = "".join(rng.choice("0123456789") for _ in range(17))
        assert check_character(first17) == reference_check_character(first17)


def test_random_valid_numbers_round_trip():
    rng = random.Random(7064)
    provinces = sorted(identity._PROVINCES)
    for _ in range(3000):
        born = date.fromordinal(rng.randrange(date(1850, 1, 1).toordinal(), TODAY.toordinal() + 1))
        seq = rng.randrange(1000)
        first17 = f"{rng.choice(provinces)}{rng.randrange(10000):04d}{born:%Y%m%d}{seq:03d}"
        number = first17 + check_character(first17)
        info = parse_id_number(number, TODAY)
        assert info.number == number
        assert info.region == first17[:6]
        assert info.birth_date == born
        assert info.sex == ("M" if seq % 2 else "F")


# --- normalisation ---------------------------------------------------------------------------

def test_15_digit_number_becomes_18():
    info = parse_id_number("110105491231002", TODAY)
    assert info.number == "11010519491231002X"
    assert info.birth_date == date(1949, 12, 31)
    assert info.sex == "F"


def test_lowercase_x_is_stored_upper_case():
    assert parse_id_number("11010519491231002x", TODAY).number == "11010519491231002X"


def test_full_width_digits_and_x():
    assert parse_id_number("１１０１０５１９４９１２３１００２ｘ", TODAY).number == "11010519491231002X"
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ", TODAY).number == "11010519491231002X"


def test_whitespace_and_excel_text_marker():
    assert parse_id_number("  '11010519491231002X\t", TODAY).number == "11010519491231002X"
    assert parse_id_number("\u300011010519491231002X\u3000", TODAY).number == "11010519491231002X"


def test_normalize_text():
    assert normalize_text(" '１３８（０２１）－ａＢ ") == "138(021)-aB"
    assert normalize_text("abc") == "abc"
    assert normalize_text("''x") == "'x"  # only the one marker Excel adds


# --- refusals, each with its own message ------------------------------------------------------

def test_excel_scientific_notation():
    message = error("1.10105E+17")
    assert "scientific notation" in message and "spreadsheet" in message
    assert "Text" in message
    assert "scientific notation" in error("1.10105194912E+17")


def test_wrong_check_character_names_the_expected_one():
    message = error("110105194912310021")
    assert message.startswith("The last character of the ID number should be X")
    assert "not 1" in message
    assert "should be 4" in error("440524188001010015")


def test_impossible_date():
    first17 = "11010519490230002"
    message = error(first17 + check_character(first17))
    assert message == "The birth date in the ID number (characters 7-14: 19490230) is not a real calendar date."
    first17 = "11010519491301002"
    assert "19491301" in error(first17 + check_character(first17))


def test_15_digit_number_with_impossible_date():
    assert "19490230" in error("110105490230002")


def test_future_birth_date():
    first17 = "11010520261124002"
    assert error(first17 + check_character(first17)) == "The birth date in the ID number (2026-11-24) is in the future."
    first17 = "11010520261123002"  # born today is fine
    assert parse_id_number(first17 + check_character(first17), TODAY).birth_date == TODAY


def test_bad_province():
    first17 = "99010519491231002"
    assert error(first17 + check_character(first17)) == (
        "The region code 990105 (first 6 digits) is not valid: 99 is not a province code.")
    first17 = "16010519491231002"
    assert "16 is not a province code" in error(first17 + check_character(first17))


def test_region_cannot_start_with_zero():
    first17 = "01010519491231002"
    assert "cannot start with 0" in error(first17 + check_character(first17))


@pytest.mark.parametrize("province", ["11", "15", "21", "23", "31", "37", "41", "46", "50", "54", "61", "65",
                                      "71", "81", "82", "83", "91"])
def test_every_province_range_edge_is_accepted(province):
    first17 = province + "010519491231002"
    assert parse_id_number(first17 + check_character(first17), TODAY).region == province + "0105"


@pytest.mark.parametrize("province", ["10", "16", "20", "24", "30", "38", "40", "47", "49", "55", "60", "66", "70",
                                      "72", "80", "84", "90", "92"])
def test_gaps_between_province_ranges_are_refused(province):
    first17 = province + "010519491231002"
    assert f"{province} is not a province code" in error(first17 + check_character(first17))


@pytest.mark.parametrize("raw, length", [("1101051949123100", 16), ("11010519491231002", 17),
                                         ("11010519491231002X1", 19), ("1", 1)])
def test_wrong_length(raw, length):
    assert error(raw) == (f"An ID number has 18 characters (or 15 for an old-style number); "
                          f"this one has {length}.")


def test_empty():
    assert error("   ") == "Enter the ID number."


def test_letter_in_the_middle():
    assert error("1101A519491231002X") == (
        "The ID number contains 'A' (character 5); only digits are allowed, with X as the last character.")


def test_x_not_in_last_place():
    assert error("1101051949123100X2") == "X can only be the last character of an ID number; it is character 17 here."


def test_space_inside():
    assert "contains a space (character 15)" in error("11010519491231 02X")


def test_x_in_a_15_digit_number():
    assert "old-style" in error("11010549123100X")


def test_error_is_a_value_error():
    assert issubclass(IdNumberError, ValueError)
    assert issubclass(PhoneError, ValueError)


# --- agreement with stated fields ---------------------------------------------------------------

FEMALE_1949 = parse_id_number("11010519491231002X", TODAY)


def test_agreement_when_fields_match_or_are_absent():
    assert check_agreement(FEMALE_1949, "F", date(1949, 12, 31)) == {}
    assert check_agreement(FEMALE_1949, None, None) == {}
    assert check_agreement(FEMALE_1949, "女", None) == {}


def test_disagreeing_sex():
    problems = check_agreement(FEMALE_1949, "M", None)
    assert list(problems) == ["sex"]
    assert problems["sex"] == ("Sex is given as male, but the ID number 11010519491231002X is a female's "
                               "(17th digit).")
    male = parse_id_number("440524188001010014", TODAY)
    assert "given as female" in check_agreement(male, "F", None)["sex"]


def test_disagreeing_birth_date():
    problems = check_agreement(FEMALE_1949, None, date(1949, 12, 30))
    assert problems == {"birth_date": "Birth date is given as 1949-12-30, but the ID number says 1949-12-31."}


def test_both_disagree():
    assert set(check_agreement(FEMALE_1949, "M", date(1950, 1, 1))) == {"sex", "birth_date"}


def test_unknown_sex_value():
    assert check_agreement(FEMALE_1949, "X", None) == {"sex": "Sex must be M or F, not 'X'."}


# --- ages ---------------------------------------------------------------------------------------

def test_age_on():
    born = date(1949, 12, 31)
    assert age_on(born, date(2026, 12, 30)) == 76
    assert age_on(born, date(2026, 12, 31)) == 77
    assert age_on(born, born) == 0
    leap = date(2000, 2, 29)
    assert age_on(leap, date(2001, 2, 28)) == 0
    assert age_on(leap, date(2001, 3, 1)) == 1
    with pytest.raises(ValueError):
        age_on(born, date(1949, 12, 30))


@pytest.mark.parametrize("age, band", [
    (0, "0-17"), (17, "0-17"), (18, "18-34"), (34, "18-34"), (35, "35-59"), (59, "35-59"),
    (60, "60-79"), (79, "60-79"), (80, "80+"), (120, "80+"),
])
def test_age_band_edges(age, band):
    assert age_band(age) == band


def test_negative_age_band():
    with pytest.raises(ValueError):
        age_band(-1)


# --- phones ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("13812345678", "13812345678"),
    ("138 1234 5678", "13812345678"),
    ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"),
    ("+8613812345678", "13812345678"),
    ("8613812345678", "13812345678"),
    ("0086 13812345678", "13812345678"),
    ("１９９１２３４５６７８", "19912345678"),
    ("'13812345678", "13812345678"),
    ("021-65012345", "021-65012345"),
    ("02165012345", "021-65012345"),
    ("(021) 6501 2345", "021-65012345"),
    ("021 6501 2345", "021-65012345"),
    ("010-88886666", "010-88886666"),
    ("0571-87654321", "0571-87654321"),
    ("0571-8765432", "0571-8765432"),
    ("021-65012345转123", "021-65012345-123"),
    ("021-65012345 转 123", "021-65012345-123"),
    ("021-65012345-123", "021-65012345-123"),
    ("021-65012345 ext 123", "021-65012345-123"),
    ("021-65012345 EXT. 8", "021-65012345-8"),
    ("+86 21 6501 2345", "021-65012345"),
    ("０２１－６５０１２３４５", "021-65012345"),
])
def test_valid_phones(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw, fragment", [
    ("", "Enter the phone number."),
    ("65012345", "Add the area code"),
    ("6501234", "Add the area code"),
    ("1381234567", "A mobile number has 11 digits; this one has 10."),
    ("138123456789", "A mobile number has 11 digits; this one has 12."),
    ("12812345678", "12 is not a mobile prefix"),
    ("021-6501234", "Local numbers in area 021 have 8 digits; this one has 7."),
    ("0571-876543", "the local number should have 7 or 8 digits; this one has 6"),
    ("021-05012345", "cannot start with 0"),
    ("138 1234 567a", "contains characters that are not part of a phone number"),
    ("1.38123E+10", "scientific notation"),
    ("13812345678转12", "Only a landline can have an extension"),
    ("12345", "A mobile number has 11 digits; this one has 5."),
    ("95588", "Not a mainland phone number"),
])
def test_invalid_phones(raw, fragment):
    with pytest.raises(PhoneError) as exc:
        normalize_phone(raw)
    assert fragment in str(exc.value)
