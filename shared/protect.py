"""Sealing personal data at rest: AES-GCM for ID numbers and phones, keyed hashes to find them.

The database never holds an ID number or phone in clear. Each value is sealed
with AES-GCM (a fresh nonce per value, the column's purpose as associated data so
a sealed phone cannot be swapped into the ID column), and beside it sits an
HMAC-SHA256 of the normalised value so look-ups and the one-person-per-street
rule work without decrypting. The pseudonym that travels up in facts uses a
different secret, so a district that learns pseudonyms learns nothing it could
match against a street's look-up hashes.
"""
import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nameko.extensions import DependencyProvider

FORMAT = b"\x01"  # leading byte: lets a future key rotation tell old blobs from new


def _key(value):
    return base64.b64decode(value.encode() + b"=" * (-len(value) % 4), altchars=b"-_")


class Vault:
    def __init__(self, data_key, pseudonym_secret, handover_secret=None):
        key = _key(data_key)
        self._aead = AESGCM(key)
        # Derived, not reused: the encryption key never doubles as a MAC key.
        self._lookup_key = hmac.new(key, b"linli lookup v1", hashlib.sha256).digest()
        self._pseudonym_key = hmac.new(pseudonym_secret.encode(), b"linli pseudonym v1", hashlib.sha256).digest()
        # City-wide, so the street a resident moves to can recognise them in a points handover.
        self._handover_key = hmac.new((handover_secret or pseudonym_secret).encode(), b"linli handover v1",
                                      hashlib.sha256).digest()

    @classmethod
    def from_config(cls, config):
        return cls(config["DATA_ENCRYPTION_KEY"], config["PSEUDONYM_SECRET"], config.get("HANDOVER_SECRET"))

    def seal(self, value, purpose):
        nonce = os.urandom(12)
        return b"".join((FORMAT, nonce, self._aead.encrypt(nonce, value.encode(), purpose.encode())))

    def open(self, blob, purpose):
        blob = bytes(blob)
        if blob[:1] != FORMAT:
            raise ValueError("unknown sealed-value format")
        return self._aead.decrypt(blob[1:13], blob[13:], purpose.encode()).decode()

    def lookup(self, value, purpose):
        # hmac.digest is the one-shot C path: an import calls this twice per row.
        return hmac.digest(self._lookup_key, f"{purpose}:{value}".encode(), "sha256")

    def handover(self, id_number):
        """The keyed hash by which any street of the city recognises this person (32 bytes)."""
        return hmac.digest(self._handover_key, id_number.encode(), "sha256")

    def pseudonym(self, id_number):
        """A stable, keyed stand-in for a person in de-identified facts."""
        return hmac.digest(self._pseudonym_key, id_number.encode(), "sha256").hex()[:32]


def mask_id(number):
    return number[:6] + "*" * 8 + number[-4:]


def mask_phone(phone):
    digits = phone.replace("-", "")
    return phone[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"


class PersonalData(DependencyProvider):
    """nameko dependency: the instance's `Vault`, built once from its configuration."""

    def setup(self):
        self.vault = Vault.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.vault
