"""Resident rules, sealing and fact signing: pure, no I/O."""
from datetime import date

import pytest

from services.gateway.http import ApiHandler
from services.gateway.openapi import build
from services.gateway.service import GatewayService
from services.registry import residency
from services.registry.identity import check_character
from shared.protect import Vault, mask_id, mask_phone
from shared import facts

TODAY = date(2026, 11, 23)
KEY = "ZGVtby1vbmx5LWRhdGEta2V5LWNoYW5nZS1tZS0wMDE="
SEED = "ZGVtby1vbmx5LXNpZ25pbmcta2V5LWNoYW5nZS1tZTE="


def number(birth="19560314", seq="124"):
    return "310110" + birth + seq + check_character("310110" + birth + seq)


def resident(**over):
    d = {"name": "王秀英", "id_number": number(), "phone": "139 1627 5318", "community_code": "310110012001",
         "grid_code": "310110012001001", "building": "12号", "unit": "2单元", "room": "302", "relation": "self",
         "residence_type": "registered", "tags": ["elderly_alone", "elderly_alone"], "moved_in": date(1998, 5, 1)}
    d.update(over)
    return d


def test_a_good_resident_is_normalised_from_the_id_number():
    clean, errors = residency.check_resident(resident(), TODAY)
    assert errors == {}
    assert (clean["sex"], clean["birth_date"], clean["phone"], clean["tags"]) == (
        "F", date(1956, 3, 14), "13916275318", ["elderly_alone"])


def test_a_legacy_number_becomes_eighteen_digits():
    clean, errors = residency.check_resident(resident(id_number="310110560314124"), TODAY)
    assert errors == {} and clean["id_number"] == number()


@pytest.mark.parametrize("over, field", [
    ({"sex": "M"}, "sex"),
    ({"birth_date": date(1956, 3, 15)}, "birth_date"),
    ({"id_number": number()[:-1] + "0"}, "id_number"),
    ({"phone": "12345"}, "phone"),
    ({"grid_code": "310110012003001"}, "grid_code"),
    ({"tags": ["vip"]}, "tags"),
    ({"relation": None}, "relation"),
    ({"household_no": None, "room": None, "relation": "spouse"}, "relation"),
    ({"unit": None}, "building"),
    ({"moved_in": date(2027, 1, 1)}, "moved_in"),
    ({"moved_in": date(1950, 1, 1)}, "moved_in"),
])
def test_each_rule_names_its_field(over, field):
    _, errors = residency.check_resident(resident(**over), TODAY)
    assert field in errors, errors


def test_status_changes_only_for_active_residents_on_plausible_days():
    r = {"id": 1, "status": "active", "status_on": None, "birth_date": date(1956, 3, 14), "moved_in": date(1998, 5, 1)}
    assert residency.check_status_change(r, TODAY, TODAY) == {}
    assert "effective" in residency.check_status_change(r, date(2030, 1, 1), TODAY)
    assert "effective" in residency.check_status_change(r, date(1990, 1, 1), TODAY)
    assert "status" in residency.check_status_change({**r, "status": "left", "status_on": TODAY}, TODAY, TODAY)


def test_fact_dimensions_hold_no_personal_data():
    dims = residency.fact_dims({"birth_date": date(1940, 1, 1), "sex": "M", "residence_type": "floating",
                                "tags": ["veteran", "disabled"], "name": "李建国"})
    # The birth year, not the day, and no band fixed on the day of the fact (bands are read from it).
    assert dims == {"cohort": 1940, "sex": "M", "residence_type": "floating", "tags": ["disabled", "veteran"]}


def test_sealing_hides_the_value_and_binds_its_purpose():
    vault = Vault(KEY, "x" * 40)
    sealed = vault.seal(number(), "resident.id_number")
    assert number().encode() not in sealed and vault.open(sealed, "resident.id_number") == number()
    assert vault.seal(number(), "resident.id_number") != sealed                 # a fresh nonce each time
    with pytest.raises(Exception):
        vault.open(sealed, "resident.phone")                                  # not swappable between columns
    assert vault.lookup(number(), "a") == vault.lookup(number(), "a") != vault.lookup(number(), "b")
    assert vault.pseudonym(number()) != Vault(KEY, "y" * 40).pseudonym(number())
    assert mask_id(number()) == "310110********124" + number()[-1]
    assert mask_phone("13916275318") == "139****5318"


def test_fact_batches_are_signed_and_refuse_extra_keys():
    signer = facts.Signer(SEED)
    source = {"service": "registry", "level": "street", "node_code": "310110012", "instance": "s"}
    batch = signer.sign(facts.batch(source, [facts.fact("resident_registered", "310110012001", TODAY,
                                                        age_band="60-79")]))
    assert facts.verify(batch, signer.public_key)
    assert not facts.verify({**batch, "facts": []}, signer.public_key)
    assert not facts.verify(batch, facts.Signer("A" * 43).public_key)
    with pytest.raises(ValueError):
        facts.batch(source, [{**batch["facts"][0], "name": "王秀英"}])


def test_every_api_route_is_in_the_openapi_document():
    paths = build("test")["paths"]
    routes = set()
    for name in dir(GatewayService):
        for ext in getattr(getattr(GatewayService, name), "nameko_entrypoints", ()):
            # The console's pages (/, /console/...) are pages, not API operations.
            if isinstance(ext, ApiHandler) and "<path:" not in ext.url and ext.url not in ("/", "/console", "/console/"):
                url = ext.url
                for conv in ("int:", "string:"):
                    url = url.replace("<" + conv, "{")
                routes.update((url.replace(">", "}"), m.lower()) for m in ext.method.split(","))
    documented = {(p, m) for p, ops in paths.items() for m in ops}
    assert routes - documented == set()
