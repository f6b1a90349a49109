#!/usr/bin/env bash
# The README's command-line walk-through: the Cambridge scenario on a fresh SQLite data dir.
# Usage: ops/walkthrough.sh [WORK_DIR]   (run inside the project's virtualenv)
set -euo pipefail
WORK=${1:-./walkthrough}
mkdir -p "$WORK" && cd "$WORK"
export EVIDENCE_LEDGER_DATA_DIR=./data

evidence-ledger init --origin cambridgema.gov/evidence-ledger   # prints the trust-root key id and log verifier key
evidence-ledger keys new --name rivera --out rivera.pem           # an investigator's key (mode 0600) + rivera.pem.pub
evidence-ledger keys new --name chen --out chen.pem               # a supervisor's key
evidence-ledger keys new --name okafor --out okafor.pem           # a Middlesex ADA's key
evidence-ledger keys register --public-key rivera.pem.pub --actor "Det. Rivera" --role investigator
evidence-ledger keys register --public-key chen.pem.pub --actor "Sgt. Chen" --role supervisor
evidence-ledger keys register --public-key okafor.pem.pub --actor "ADA Okafor" --role prosecutor --authority middlesex_da

evidence-ledger events list                       # every event type and the roles that may append it
evidence-ledger events template FootageCaptured   # a fillable body: every field with what goes in it
# Open the case: a new case id, printed; its CaseOpened is signed with the investigator's key.
CASE=$(evidence-ledger case new --number CPD-2026-0001 --key rivera.pem --category property_damage \
  --summary "Vehicle damaged during a federal operation")
if evidence-ledger case new --number CPD-2026-0001 --key rivera.pem --category violence --summary "Typo"; then
  echo "a second case with the same number should have been refused" >&2; exit 1
fi                                                # refused: DUPLICATE_CASE_NUMBER (case_id=$CASE)
evidence-ledger case list --number CPD-2026-0001  # find a case by its number
printf 'stand-in for the original body-camera file' > footage.mp4
SHA=$(evidence-ledger evidence put footage.mp4 --json | python -c 'import json, sys; print(json.load(sys.stdin)["sha256"])')

# The caller's identity is sealed outside the log and never put on a command line (every local user
# sees arguments in ps and /proc): `seal` reads a file or standard input. printf is a shell builtin, so
# no process gets the data as an argument; at a terminal, run `seal --data-file -` and type it instead.
SEALED=$(printf '%s' '{"name": "(caller name)", "phone": "(caller phone)"}' | evidence-ledger seal --data-file -)
REPORT='{"report_id": "rpt-1", "channel": "911_call", "received_at": "2026-02-05T17:02:00Z",
  "location": "Central Square", "observed_agency": "ICE", "narrative": "Caller saw masked agents break a car window.",
  "reporter": null}'
if evidence-ledger append "$CASE" ReportReceived --key rivera.pem --body "${REPORT/window./window; call back 617-555-0100.}"; then
  echo "a phone number in a narrative should have been refused" >&2; exit 1
fi                                          # refused: PERSONAL_DATA_IN_FREE_TEXT: narrative: … (kind=phone)
evidence-ledger append "$CASE" ReportReceived --key rivera.pem --body "${REPORT/null/$SEALED}"
evidence-ledger append "$CASE" FootageCaptured --key rivera.pem --body "{\"footage_id\": \"ftg-1\",
  \"source\": \"body_worn_camera\", \"device_id\": \"BWC-0042\", \"recorded_from\": \"2026-02-05T16:58:00Z\",
  \"recorded_to\": \"2026-02-05T17:06:00Z\", \"sha256\": \"$SHA\", \"size_bytes\": 42, \"media_type\": \"video/mp4\",
  \"depicts\": [\"property_damage_by_federal_officials\"], \"custodian\": \"CPD Evidence Unit\", \"stored\": true}"
# A body can come from a file (--body @hold.json) or standard input (--body -):
evidence-ledger append "$CASE" InvestigationHoldPlaced --key rivera.pem --body - <<'JSON'
{"hold_id": "hold-1", "scope": "case", "authority": "middlesex_da", "reason": "Active DA investigation"}
JSON
RELEASE="{\"footage_id\": \"ftg-1\", \"sha256\": \"$SHA\", \"basis\": \"executive_order\", \"channel\": \"city website\"}"
if evidence-ledger append "$CASE" FootageReleased --key chen.pem --body "$RELEASE"; then
  echo "the release under a hold should have been refused" >&2; exit 1
fi                                                                # refused: RELEASE_UNDER_HOLD (hold_id=hold-1)
evidence-ledger append "$CASE" InvestigationHoldLifted --key chen.pem --body '{"hold_id": "hold-1",
  "reason": "DA cleared release"}'
evidence-ledger append "$CASE" FootageReleased --key chen.pem --body "$RELEASE"
evidence-ledger append "$CASE" ReferralMade --key rivera.pem --body '{"referral_id": "ref-1",
  "authority": "middlesex_da", "basis": "Property damage by federal officers"}'
evidence-ledger append "$CASE" ReferralAcknowledged --key okafor.pem --body '{"referral_id": "ref-1", "note": "Received"}'
evidence-ledger append "$CASE" CustodyTransferred --key rivera.pem --body '{"footage_id": "ftg-1",
  "from_custodian": "CPD Evidence Unit", "to_custodian": "Middlesex DA", "purpose": "Copy delivered for prosecution"}'
evidence-ledger append "$CASE" CaseClosed --key chen.pem --body '{"disposition": "referred"}'

evidence-ledger case show "$CASE"            # footage, holds, releases, referrals and the timeline
evidence-ledger case custody "$CASE" ftg-1   # the footage's chain of custody, one link per line
evidence-ledger case events "$CASE" > events.jsonl   # the stored envelopes, one per line, exactly as stored
evidence-ledger replay                       # rebuild every projection from the events

# Verify by hand with public keys only.
evidence-ledger log key > log.vkey
evidence-ledger log checkpoint > checkpoint.txt
SIZE=$(sed -n 2p checkpoint.txt)
evidence-ledger log entry 5 --out leaf5.json
evidence-ledger log prove-inclusion 5 --size "$SIZE" > inclusion.json
evidence-ledger log verify-checkpoint --vkey log.vkey checkpoint.txt
evidence-ledger log verify-inclusion --vkey log.vkey --checkpoint checkpoint.txt --leaf leaf5.json --proof inclusion.json

# The prosecutor's bundle: one file, verified offline (no server, no database, no network).
ROOT=$(evidence-ledger keys list --json | python -c 'import json, sys; print(json.load(sys.stdin)["root_key_id"])')
evidence-ledger export "$CASE" --out case.zip --with-media
evidence-ledger verify case.zip --vkey log.vkey --trust-root "$ROOT" --html report.html

# The auditor's replay of the whole ledger, straight from the database.
evidence-ledger audit --vkey log.vkey --trust-root "$ROOT"
