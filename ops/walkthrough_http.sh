#!/usr/bin/env bash
# The README's HTTP walk-through: the service on SQLite, an investigator appending through it.
# Usage: ops/walkthrough_http.sh [WORK_DIR] [PORT]   (run inside the project's virtualenv)
set -euo pipefail
WORK=${1:-./walkthrough-http}
PORT=${2:-8000}
mkdir -p "$WORK" && cd "$WORK"
export EVIDENCE_LEDGER_DATA_DIR=./data
URL=http://127.0.0.1:$PORT

evidence-ledger init --origin cambridgema.gov/evidence-ledger
evidence-ledger keys new --name rivera --out rivera.pem
evidence-ledger keys register --public-key rivera.pem.pub --actor "Det. Rivera" --role investigator
TOKEN=$(evidence-ledger tokens issue --actor "Det. Rivera" --role investigator --expires-in 8h | tail -n 1)

evidence-ledger serve --port "$PORT" > server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 1 50); do curl -fsS "$URL/healthz" > /dev/null 2>&1 && break; sleep 0.2; done

# The client signs locally with the investigator's key; the token alone could not append.
CASE=$(evidence-ledger case new --number CPD-2026-0002 --key rivera.pem --server "$URL" --token "$TOKEN" \
  --category violence --summary "Use of force at a traffic stop")
# Personal data is sealed outside the log: the request body comes from standard input (--data-binary @-),
# never from an argument.
SEALED=$(printf '%s' '{"name": "(caller name)", "phone": "(caller phone)"}' | curl -fsS -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" --data-binary @- "$URL/v1/sealed")
evidence-ledger append "$CASE" ReportReceived --key rivera.pem --server "$URL" --token "$TOKEN" \
  --body "{\"report_id\": \"rpt-1\", \"channel\": \"911_call\", \"received_at\": \"2026-02-05T17:02:00Z\",
  \"location\": \"Central Square\", \"observed_agency\": \"ICE\", \"narrative\": \"Caller saw agents at a traffic stop.\",
  \"reporter\": $SEALED}"
curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/v1/cases/$CASE"; echo
for _ in $(seq 1 50); do                               # the server signs a checkpoint within a second
  [ "$(curl -fsS "$URL/v1/log/checkpoint" | sed -n 2p)" = 5 ] && break; sleep 0.1
done
curl -fsS "$URL/v1/log/checkpoint"                     # public: the signed checkpoint, now covering the case
curl -fsS "$URL/v1/log/proof/inclusion?index=3&size=5"; echo   # public: the case's first leaf is in that tree
curl -fsS "$URL/v1/public/releases"; echo              # public: released footage only (none yet)
curl -fsS "$URL/v1/public/statistics"; echo            # public: monthly counts, closed months only
