"""Configuration: every problem reported at once, by key; environment overrides the file."""
import pytest

from shared.config import ConfigError, load

GOOD = {
    "LEVEL": "street", "NODE_CODE": "310110012", "AMQP_URI": "amqp://guest:guest@localhost/linli",
    "DATABASE_URL": "postgresql://postgres@localhost/linli", "PSEUDONYM_SECRET": "s" * 40,
    "DATA_ENCRYPTION_KEY": "ZGVtby1vbmx5LWRhdGEta2V5LWNoYW5nZS1tZS0wMDE=",
    "SIGNING_KEY": "ZGVtby1vbmx5LXNpZ25pbmcta2V5LWNoYW5nZS1tZTE=", "HANDOVER_SECRET": "h" * 40,
}


def test_a_complete_environment_loads_with_defaults():
    cfg = load(environ=GOOD)
    assert cfg["INSTANCE"] == "street-310110012"
    assert cfg["MAX_DELIVERIES"] == 5 and cfg["LOG_LEVEL"] == "INFO"


def test_every_missing_key_is_named():
    with pytest.raises(ConfigError) as err:
        load(environ={})
    assert {"LEVEL", "NODE_CODE", "AMQP_URI", "DATABASE_URL", "PSEUDONYM_SECRET",
            "DATA_ENCRYPTION_KEY", "SIGNING_KEY", "HANDOVER_SECRET"} <= set(err.value.problems)
    assert "LEVEL: Missing data" in str(err.value)


@pytest.mark.parametrize("key, value, fragment", [
    ("LEVEL", "province", "Must be one of"),
    ("NODE_CODE", "31011001", "a street code has 9 digits"),
    ("NODE_CODE", "31011O012", "digits only"),
    ("AMQP_URI", "http://localhost", "amqp://"),
    ("DATABASE_URL", "mysql://x", "postgresql://"),
    ("PSEUDONYM_SECRET", "short", "at least 32"),
    ("DATA_ENCRYPTION_KEY", "c2hvcnQ=", "32 bytes"),
    ("SIGNING_KEY", "%%%", "base64"),
])
def test_wrong_values_are_explained(key, value, fragment):
    with pytest.raises(ConfigError) as err:
        load(environ={**GOOD, key: value})
    assert fragment in err.value.problems[key]


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("LEVEL: district\nNODE_CODE: '310110'\nmax_workers: 20\n", encoding="utf-8")
    cfg = load(str(path), environ={k: v for k, v in GOOD.items() if k not in ("LEVEL", "NODE_CODE")})
    assert (cfg["LEVEL"], cfg["NODE_CODE"], cfg["max_workers"]) == ("district", "310110", 20)
    cfg = load(str(path), environ={**GOOD, "LEVEL": "street", "NODE_CODE": "310110012"})
    assert cfg["LEVEL"] == "street"


def test_an_unreadable_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "missing.yaml"), environ=GOOD)


def test_peer_keys_come_from_yaml_or_as_json_in_the_environment():
    cfg = load(environ={**GOOD, "PEER_KEYS": '{"310110013": "pubkey"}'})
    assert cfg["PEER_KEYS"] == {"310110013": "pubkey"} and load(environ=GOOD)["PEER_KEYS"] == {}
    with pytest.raises(ConfigError) as err:
        load(environ={**GOOD, "PEER_KEYS": '{"3101": "pubkey"}'})
    assert "PEER_KEYS" in err.value.problems
