"""What a street's reason for escalating must not carry to the district (services/consultation/disclosure.py)."""
import pytest

from services.consultation.disclosure import ID_NUMBER, PHONE, ROOM, findings, plain
from services.registry.identity import check_character

FIRST17 = "11010519491231002"
ID18 = FIRST17 + check_character(FIRST17)


@pytest.mark.parametrize("text, found", [
    (f"身份证{ID18}", [ID_NUMBER]),
    (f"身份证 {ID18[:6]} {ID18[6:14]} {ID18[14:]}", [ID_NUMBER]),                 # written in groups
    ("证件号11010519491231002x", [ID_NUMBER]),                                  # lower-case x
    ("证件号110105194912310029", [ID_NUMBER]),                                  # mistyped: still a person
    ("老证件110105491231002", [ID_NUMBER]),                                      # the 15-digit form
    ("证件１１０１０５１９４９１２３１００２Ｘ", [ID_NUMBER]),                       # full-width
    ("电话13916275318", [PHONE]),
    ("电话 139 1627 5318", [PHONE]),
    ("电话139-1627-5318", [PHONE]),
    ("电话+86 139 1627 5318", [PHONE]),
    ("电话0086-13916275318", [PHONE]),
    ("电话1391627\u200b5318", [PHONE]),                                          # a hidden character inside
    ("电话𝟏𝟑𝟗𝟏𝟔𝟐𝟕𝟓𝟑𝟏𝟖", [PHONE]),                                              # mathematical digits
    ("家里座机021-65012345", [PHONE]),
    ("座机 0512 6801 2345", [PHONE]),
    ("3号楼2单元501室", [ROOM]),
    ("住501室", [ROOM]),
    ("住五零一室", [ROOM]),
    ("12号2单元302", [ROOM]),
    ("2单元501漏水", [ROOM]),
    ("8号楼501漏水", [ROOM]),
    ("3-2-501漏水", [ROOM]),
    ("501房漏水", [ROOM]),
    (f"{ID18}，13916275318，3号楼2单元501室", [ID_NUMBER, PHONE, ROOM]),
    (f"{ID18} 13916275318", [ID_NUMBER, PHONE]),                                 # two numbers side by side
])
def test_each_kind_is_found_however_it_is_written(text, found):
    assert findings(text) == found


@pytest.mark.parametrize("text", [
    "需区建管委协调道路停车管理",
    "2024-05-01起已有12户反映，预算180000元，涉及8号楼前道路",
    "2室1厅户型为主，三室两厅少见，居委会二楼会议室已用于议事",
    "拨打12345市民热线或110报警",
    "电话139****5318的居民已回访",                                                # masked: nothing left to read
    "订单号12345678901234567890",                                                 # too long to be a phone or an ID
    "房源紧张，120房屋待修",
    "8号楼2024年加装电梯",
])
def test_ordinary_reasons_pass(text):
    assert findings(text) == []


def test_invisible_characters_are_dropped_and_compatibility_forms_folded():
    assert plain("王\u200b秀\u202e英\ufeff１２") == "王秀英12"
