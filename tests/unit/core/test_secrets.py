"""Sealing, opening, redacting and rotating credentials (core.secrets), with real Fernet keys."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from stratum.core.errors import Invalid
from stratum.core.secrets import (
    Keyring,
    UnreadableSecret,
    open_credentials,
    redact,
    reseal,
    seal,
)

OLD, NEW = Keyring.generate_key(), Keyring.generate_key()
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: ci, user: {token: s3cr3t-xyz}}]\n"


def cluster(**credentials: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "k8s-fra"},
        "spec": {"site": "fra-1", "backend": "kubernetes", "credentials": credentials},
    }


def test_sealed_values_hold_no_plaintext_and_open_to_it() -> None:
    keys = Keyring((NEW,))
    stored = seal(keys, cluster(kubeconfig=KUBECONFIG), None)
    envelope = stored["spec"]["credentials"]["kubeconfig"]
    assert envelope.startswith("enc:v1:")
    assert "s3cr3t" not in str(stored)
    assert open_credentials(keys, stored) == {"kubeconfig": KUBECONFIG}


def test_redacted_form_shows_stars_and_a_keyed_fingerprint_only() -> None:
    keys = Keyring((NEW,))
    stored = seal(keys, cluster(kubeconfig=KUBECONFIG, token="abc"), None)
    shown = redact(stored)
    fingerprint = keys.fingerprint(KUBECONFIG)
    assert shown["spec"]["credentials"] == {
        "kubeconfig": f"***:{fingerprint}",
        "token": f"***:{keys.fingerprint('abc')}",
    }
    assert stored["spec"]["credentials"]["kubeconfig"].startswith("enc:v1:")  # not mutated
    # Keyed: another key gives another fingerprint, so it is no plain hash to guess against.
    assert Keyring((OLD,)).fingerprint(KUBECONFIG) != fingerprint


def test_rotation_opens_with_any_key_and_seals_with_the_newest() -> None:
    old_only, both, new_only = Keyring((OLD,)), Keyring((NEW, OLD)), Keyring((NEW,))
    stored = seal(old_only, cluster(kubeconfig=KUBECONFIG), None)
    assert open_credentials(both, stored) == {"kubeconfig": KUBECONFIG}
    with pytest.raises(UnreadableSecret):
        open_credentials(new_only, stored)
    rotated = reseal(both, stored)
    assert rotated is not None
    assert open_credentials(new_only, rotated) == {"kubeconfig": KUBECONFIG}
    with pytest.raises(UnreadableSecret):
        open_credentials(old_only, rotated)
    assert (
        redact(rotated)["spec"]["credentials"]["kubeconfig"]
        == f"***:{new_only.fingerprint(KUBECONFIG)}"
    )
    assert reseal(both, cluster()) is None  # nothing to rotate


def test_wrong_key_is_a_clear_error_naming_object_and_field() -> None:
    stored = seal(Keyring((OLD,)), cluster(kubeconfig=KUBECONFIG), None)
    with pytest.raises(UnreadableSecret) as err:
        open_credentials(Keyring((NEW,)), stored)
    message = err.value.message
    assert "Cluster k8s-fra: spec.credentials.kubeconfig cannot be decrypted" in message
    assert "key it was sealed with is missing" in message
    assert err.value.code == 503
    assert "s3cr3t" not in message and NEW not in message


def test_tampered_ciphertext_is_a_clear_error() -> None:
    keys = Keyring((NEW,))
    stored = seal(keys, cluster(kubeconfig=KUBECONFIG), None)
    envelope = stored["spec"]["credentials"]["kubeconfig"]
    prefix, token = envelope.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[40] ^= 0x01  # one bit of the ciphertext
    stored["spec"]["credentials"]["kubeconfig"] = (
        f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    )
    with pytest.raises(UnreadableSecret, match="stored value was altered"):
        open_credentials(keys, stored)
    with pytest.raises(UnreadableSecret, match="cannot be decrypted"):
        reseal(keys, stored)
    # In the change feed's history an unreadable value loses its ciphertext, not the rotation.
    kept = reseal(keys, stored, strict=False)
    assert kept is not None
    assert redact(kept) == redact(stored)


def test_same_plaintext_keeps_its_envelope_and_the_redacted_form_round_trips() -> None:
    keys = Keyring((NEW,))
    stored = seal(keys, cluster(kubeconfig=KUBECONFIG), None)
    again = seal(keys, cluster(kubeconfig=KUBECONFIG), stored)
    assert again == stored  # applying the same manifest changes nothing
    edited = redact(stored)  # what a GET returned, sent back with a PUT
    assert seal(keys, edited, stored) == stored
    changed = seal(keys, cluster(kubeconfig="other"), stored)
    assert changed["spec"]["credentials"] != stored["spec"]["credentials"]


def test_what_a_client_may_not_send() -> None:
    keys = Keyring((NEW,))
    stored = seal(keys, cluster(kubeconfig=KUBECONFIG), None)
    envelope = stored["spec"]["credentials"]["kubeconfig"]
    with pytest.raises(Invalid, match="written by the server only"):
        seal(keys, cluster(kubeconfig=envelope), None)
    with pytest.raises(Invalid, match="redacted form .* does not match"):
        seal(keys, cluster(kubeconfig="***:0123456789abcdef"), stored)
    with pytest.raises(Invalid, match="no secret key.*STRATUM_SECRET_KEYS") as err:
        seal(None, cluster(kubeconfig=KUBECONFIG), None)
    assert err.value.causes[0].field == "spec.credentials.kubeconfig"


def test_keys_parse_newest_first_and_never_show_in_errors_or_repr() -> None:
    keys = Keyring.parse(f"# rotated 2026-01\n{NEW}, {OLD}\n\n")
    assert keys.keys == (NEW, OLD)
    assert NEW not in repr(keys) and NEW not in keys.key_id
    with pytest.raises(ValueError, match="secret key #2 is not a Fernet key") as err:
        Keyring.parse(f"{NEW},not-a-key-at-all")
    assert "not-a-key" not in str(err.value)
    with pytest.raises(ValueError):
        Keyring(())


def test_objects_without_secrets_pass_untouched() -> None:
    site = {"kind": "Site", "metadata": {"name": "fra-1"}, "spec": {}}
    assert redact(site) is site
    assert seal(None, site, None) is site
    assert open_credentials(None, cluster()) == {}
