"""Trust domains of witnesses (ledger.log.domains) and the production profile in ledger.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.log.domains import other_trust_domain, trust_domain
from ledger.settings import CONFIG_FILE, ConfigurationError, LedgerConfig

ORIGIN = "cambridgema.gov/evidence-ledger"


@pytest.mark.parametrize(
    ("witness", "other"),
    [
        ("middlesexda.gov/witness", True),
        ("mass.gov/ago-witness", True),
        ("cambridge.gov/witness", True),  # a different name, not a subdomain
        ("xcambridgema.gov/witness", True),  # a suffix of the text, not of the domain
        ("cambridgema.gov/witness", False),  # the log's own host
        ("CambridgeMA.GOV./witness", False),  # case and a trailing dot do not make it another
        ("witness.cambridgema.gov/w", False),  # a subdomain of the log's host
        ("gov/witness", False),  # a parent of it
        ("cambridgema.gov:8443/witness", False),  # a port is not another domain
        ("/witness", False),  # no host at all: never independent
    ],
)
def test_a_witness_is_in_another_trust_domain_only_outside_the_log_host_its_subdomains_and_parents(
    witness: str, other: bool
) -> None:
    assert other_trust_domain(witness, ORIGIN) is other


def test_the_domain_is_the_host_part_before_the_first_slash() -> None:
    assert trust_domain("MiddlesexDA.gov/witness/v1") == "middlesexda.gov"
    assert trust_domain("[::1]:7380/w") == "::1"


def _write(path: Path, **fields: object) -> None:
    base = {"origin": ORIGIN, "admin_key_id": "a" * 64, "log_key_name": ORIGIN}
    (path / CONFIG_FILE).write_text(json.dumps({**base, **fields}), "utf-8")


def test_ledger_json_without_a_profile_is_standard_and_production_needs_two_witnesses(tmp_path: Path) -> None:
    _write(tmp_path)  # written before profiles existed
    old = LedgerConfig.load(tmp_path)
    assert (old.profile, old.min_witnesses, old.production) == ("standard", 0, False)
    _write(tmp_path, profile="production")
    assert LedgerConfig.load(tmp_path).min_witnesses == 2
    for bad in ({"profile": "production", "min_witnesses": 1}, {"profile": "prod"}, {"min_witnesses": "2"}):
        _write(tmp_path, **bad)
        with pytest.raises(ConfigurationError) as caught:
            LedgerConfig.load(tmp_path)
        assert str(tmp_path / CONFIG_FILE) in caught.value.message
    config = LedgerConfig(ORIGIN, "b" * 64, ORIGIN, profile="production", min_witnesses=3)
    config.save(tmp_path)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["min_witnesses"] == 3
    assert LedgerConfig.load(tmp_path) == config
