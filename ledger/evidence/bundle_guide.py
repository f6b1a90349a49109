"""HOW-TO-VERIFY.txt: the plain-text guide shipped in every bundle.

It explains every format in the bundle and gives a POSIX shell script (between the BEGIN/END SCRIPT
lines) that checks one entry with plain POSIX tools (sh, sed, awk, od, tail, cut, tr), base64,
sha256sum and OpenSSL 3 (``openssl pkeyutl -verify -rawin`` for Ed25519): no Python. It says exactly
what it does not check. ``tests/ledger/evidence/test_bundle.py`` runs that script with /bin/sh on a
real bundle.
"""

from __future__ import annotations

SCRIPT_BEGIN = "----- BEGIN SCRIPT -----"
SCRIPT_END = "----- END SCRIPT -----"

_GUIDE = """\
HOW TO VERIFY THIS EVIDENCE BUNDLE
==================================

Ledger (log origin):  @ORIGIN@
Case id:              @CASE@
Checkpoint size:      @SIZE@ entries
Trust root key id:    @ROOTKEY@   (compare with the key id the City of Cambridge published)

This zip file is a self-contained, signed record of one case of the Cambridge Police evidence
ledger. Everything in it can be checked without any server, database or network, either with the
`evidence-ledger verify` command (see docs/verification.md of the project), in a web browser with
the verifier page (verify.html), or by hand with standard tools, as described here. Nothing in this bundle needs to be trusted except three public keys that
you obtain independently: the trust root key id (above), the log verifier key and, if you require
them, the witnesses' verifier keys.

With the verifier installed, give it the keys you obtained from the City, not the copies in here:

    evidence-ledger verify bundle.zip --vkey LOG_VERIFIER_KEY --trust-root TRUST_ROOT_KEY_ID

(or pin them once with `evidence-ledger trust pin --origin @ORIGIN@ --vkey ... --trust-root ...`).
It says VERIFIED, exit code 0, only when nothing is wrong and both keys are pinned; without them it
says UNPINNED, exit code 4: the bundle was then only checked against its own copies of the keys.

1. FILES
--------
verify.html            The in-browser verifier: open it, give it the keys and this zip file; it
                       checks everything below, the case rules included, connecting nowhere.
                       The copy in here proves nothing about itself (whoever could change the
                       bundle could change it): prefer the page served at /verify by the ledger's
                       own server, or the one from the project's release.
manifest.json          JSON. "files" lists every other file with its SHA-256 (lowercase hex) and
                       size in bytes. The manifest itself is not signed: it only makes accidental or
                       careless changes visible. The signatures below are what proves authenticity.
envelopes/<n>.json     The signed event stored at log position (leaf index) n, byte for byte as the
                       ledger stored it. Every event of the case, plus the key-registry events that
                       register (and revoke) the keys that signed them.
leaves/<n>.json        The public log leaf for position n, exact bytes.
proofs/<n>.json        Proof that leaf n is in the log tree signed by checkpoint.txt.
checkpoint.txt         The log's signed checkpoint, with witness cosignatures.
log.vkey               The log's verifier key (a copy; obtain it independently for a real check).
witnesses/*.vkey       Verifier keys of the witnesses that cosign checkpoints (copies, likewise).
media/<sha256>         Optional: footage and derivative files, named by their SHA-256.
access/checkpoint.txt  The access log's signed checkpoint (origin "@ORIGIN@/access"); see 6a.
access/entries/<n>.json  Access-log entry n: one read, download or refusal naming this case.
access/proofs/<n>.json   Proof that access entry n is in the access tree signed by access/checkpoint.txt.
receipts/<n>.txt       The log's signed receipt for leaf n: seven lines (a header "evidence-ledger receipt
                       v1", the origin, n, base64 of leaf n's hash, its integration time, the promised
                       delay in seconds, the envelope's SHA-256) and a signature by the log key, checked
                       like checkpoint.txt's (section 5).
timestamps/<n>.tsr     Optional: an RFC 3161 time-stamp by a time-stamping authority (TSA) over the
                       checkpoint's signed body (its first three lines): proof that the log held
                       all of the above by the TSA's time. Check it with the TSA's CA certificate:
                         head -n 3 checkpoint.txt > body.txt
                         openssl ts -verify -in timestamps/0.tsr -data body.txt -CAfile TSA-CA.pem
                         openssl ts -reply -in timestamps/0.tsr -text   # its "Time stamp:"

All JSON that is signed or hashed is RFC 8785 canonical JSON (no spaces, keys sorted), UTF-8.

2. ENVELOPE (DSSE) AND STATEMENT
--------------------------------
An envelope is {"payload": B, "payloadType": T, "signatures": [{"keyid": K, "sig": S}]} where
  T = application/vnd.evidence-ledger.event.v1+json (45 bytes),
  B = standard base64 of the statement bytes,
  S = standard base64 of a 64-byte Ed25519 signature (RFC 8032) over the DSSE "PAE":
        "DSSEv1" SP len(T) SP T SP len(statement) SP statement
      (lengths in ASCII decimal, SP = one space; the statement is the base64-DECODED payload),
  K = the signer's key id = lowercase hex SHA-256 of its raw 32-byte Ed25519 public key.
The statement is {"body", "case_id", "event_id", "ledger", "occurred_at", "prev", "seq", "signer",
"type", "type_version"}: "ledger" must equal the origin above, "signer" equals K, "seq" counts the
events of a case from 1 without gaps, and "prev" is the SHA-256 of the exact bytes of the case's
previous envelope file (null for seq 1).

3. KEYS
-------
Keys are registered in the log itself, in the stream with case id
00000000-0000-0000-0000-000000000000: a "KeyRegistered" statement carries key_id, public_key
(base64 of the raw 32 bytes), actor, role and authority; a "KeyRevoked" statement revokes a key.
The first one (envelopes/0.json) is the trust root: an admin key that signed its own registration;
its key id must equal the trust root key id the City published. Every later registry event must be
signed by an admin key registered before it. A key may sign from its registration (and its
valid_from) until its revocation, or from "compromised_since" if that is set; its status is judged
at the leaf's "integrated_at" time. Roles limit what a key may sign (investigators open cases and
document; supervisors also release footage, lift holds and close cases; prosecutors acknowledge
referrals for their authority; the service key only recorded evidence downloads, before they went to
the access log, section 6a).

To turn a raw Ed25519 public key into a PEM file openssl accepts, prefix the 12 DER bytes
30 2a 30 05 06 03 2b 65 70 03 21 00 and convert (see the script).

4. LOG LEAF, TREE AND INCLUSION PROOF
-------------------------------------
leaves/<n>.json is {"envelope_sha256": H, "index": n, "integrated_at": time, "v": 1} where H is the
SHA-256 of envelopes/<n>.json. The log is an RFC 6962 Merkle tree: leaf hash = SHA-256(0x00 || leaf
bytes), node hash = SHA-256(0x01 || left || right). proofs/<n>.json is
{"audit_path": [...], "leaf_index": n, "tree_size": N}, the audit path in standard base64, leaf to
root; it is checked with the RFC 9162 section 2.1.3.2 algorithm (in the script) against the root and
size of checkpoint.txt.

5. CHECKPOINT AND WITNESSES
---------------------------
checkpoint.txt is a C2SP signed note (c2sp.org/signed-note, c2sp.org/tlog-checkpoint):
    <origin>\\n<tree size>\\n<base64 root>\\n      the note text (all bytes up to the blank line)
    \\n
    — <name> <base64(4-byte key id || signature)>\\n   one line per signature (U+2014 EM DASH)
The log's line is an Ed25519 signature over the note text by the key in log.vkey, whose format is
<name>+<8 hex key id>+<base64(0x01 || 32-byte public key)>, key id = first 4 bytes of
SHA-256(name || 0x0A || 0x01 || public key). A witness line (c2sp.org/tlog-cosignature) holds
key id (4 bytes) || timestamp (8 bytes, big-endian POSIX seconds) || Ed25519 signature over
"cosignature/v1\\ntime <timestamp>\\n" || note text, by the key in witnesses/<name>.vkey (type byte
0x04). A witness cosigns only a checkpoint that extends the last one it saw, so a log cannot show
different histories to different people without a witness noticing.

6. MEDIA
--------
media/<sha256> is named by the SHA-256 that a FootageCaptured or FootageDerivativeCreated statement
of the case records: `sha256sum media/*` must print each file's own name.

6a. ACCESS LOG
--------------
Every read of the case (its view, events, timeline, bundle), every download of its files and every
refusal of one is an entry of the ledger's access log, a second RFC 6962 tree kept apart from the
case log. access/entries/<n>.json is {"action", "actor", "case_id", "code", "index": n, "item",
"outcome", "recorded_at", "request_id", "role", "token_id", "v": 1} (identifiers only, canonical
JSON); its leaf hash is SHA-256(0x00 || the file's bytes) and access/proofs/<n>.json proves it
against access/checkpoint.txt exactly as in section 4. access/checkpoint.txt is signed by the same
log key as checkpoint.txt (section 5) but its first line is "@ORIGIN@/access", never the case
log's origin. Every entry must name this case ("case_id").

"""

_SCRIPT_PART = r"""7. THE CASE RULES
-----------------
The events of the case, in seq order, must obey the executive order's rules: footage is released
only when no active investigation hold covers it; a referral goes to the Middlesex District
Attorney or the Massachusetts Attorney General and is acknowledged by a prosecutor key of that
authority; a closed case accepts only a reopening or an access record. `evidence-ledger verify`
replays them; by hand, list the statements in log order (case id, seq, type, time, signer) and
read them:

    for f in $(ls envelopes | sort -n); do sed 's/.*"payload":"\([^"]*\)".*/\1/' "envelopes/$f" | base64 -d | sed 's/.*"case_id":"\([^"]*\)","event_id".*"occurred_at":"\([^"]*\)","prev":\([^,]*\),"seq":\([0-9]*\),"signer":"\([0-9a-f]*\)","type":"\([^"]*\)","type_version".*/\1 seq=\4 \6 \2 signer=\5 prev=\3/'; echo " sha256=$(sha256sum "envelopes/$f" | cut -c1-64)"; done

Each line shows the envelope's "prev" and its own SHA-256: within a case, seq counts 1, 2, 3, ...
and each "prev" is the SHA-256 of the line before it (step 10 of the script below checks exactly
that).

8. A SCRIPT THAT CHECKS ONE ENTRY
--------------------------------
Unzip the bundle (`unzip bundle.zip -d bundle && cd bundle`), save the lines between the BEGIN and
END lines as check.sh and run `sh check.sh N` for any leaf index N (default @N@, the case's first
event). It needs only a POSIX shell and its usual tools (sed, awk, od, tail, cut, tr), base64,
sha256sum and OpenSSL 3; no Python. It writes its scratch files to .check/ and stops at the first
failure. It reads the JSON files with sed, relying on their canonical form (no spaces, sorted keys),
which is also why it never parses them strictly.

@BEGIN@
set -eu
N=${1:-@N@}
T=application/vnd.evidence-ledger.event.v1+json
SPKI='\060\052\060\005\006\003\053\145\160\003\041\000'
mkdir -p .check
fail() { echo "FAILED: $*" >&2; exit 1; }
hex() { od -An -tx1 -v | tr -d ' \n'; }
hexn() { od -An -tx1 -v -N"$1" | tr -d ' \n'; }
unhex() { printf "$(printf %s "$1" | awk '{ d = "0123456789abcdef"; for (i = 1; i < length($0); i += 2)
  printf "\\%03o", (index(d, substr($0, i, 1)) - 1) * 16 + index(d, substr($0, i + 1, 1)) - 1 }')"; }
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$2"; }
pem() { { printf "$SPKI"; printf %s "$1" | base64 -d | tail -c +2; } > .check/key.der
  openssl pkey -pubin -inform DER -in .check/key.der -out "$2"; }

# 1. every file against the manifest
awk -F'"' '/"path":/ { p = $4 } /"sha256":/ { print $4 "  " p }' manifest.json | sha256sum -c --quiet - || fail "manifest"
echo "manifest: every listed file matches"

# 2. the statement and the signature inside the envelope
field payload "envelopes/$N.json" | base64 -d > .check/statement.json
field sig "envelopes/$N.json" | base64 -d > .check/sig.bin
SIGNER=$(field keyid "envelopes/$N.json")
test "$(field signer .check/statement.json)" = "$SIGNER" || fail "the statement's signer is not the envelope's keyid"
echo "entry $N: signed by key $SIGNER"

# 3. the signer's public key, from its KeyRegistered envelope in this bundle
PUB=
for f in envelopes/*.json; do
  field payload "$f" | base64 -d > .check/other.json
  if [ "$(field type .check/other.json)" = KeyRegistered ] && [ "$(field key_id .check/other.json)" = "$SIGNER" ]; then
    PUB=$(field public_key .check/other.json); break
  fi
done
test -n "$PUB" || fail "no KeyRegistered envelope for the signer"
test "$(printf %s "$PUB" | base64 -d | sha256sum | cut -c1-64)" = "$SIGNER" || fail "the key id is not the key's SHA-256"
{ printf "$SPKI"; printf %s "$PUB" | base64 -d; } > .check/signer.der
openssl pkey -pubin -inform DER -in .check/signer.der -out .check/signer.pem

# 4. Ed25519 over the DSSE PAE
printf 'DSSEv1 %d %s %d ' ${#T} "$T" $(($(wc -c < .check/statement.json))) > .check/pae.bin
cat .check/statement.json >> .check/pae.bin
openssl pkeyutl -verify -pubin -inkey .check/signer.pem -rawin -in .check/pae.bin -sigfile .check/sig.bin

# 5. the leaf commits to these envelope bytes at this index
ENV_SHA=$(sha256sum "envelopes/$N.json" | cut -c1-64)
grep -q "^{\"envelope_sha256\":\"$ENV_SHA\",\"index\":$N,\"integrated_at\":\"[^\"]*\",\"v\":1}\$" "leaves/$N.json" || fail "leaf mismatch"
echo "leaf $N: commits to envelope $ENV_SHA"

# 6. the inclusion proof leads to the checkpoint's root (RFC 9162 2.1.3.2)
SIZE=$(sed -n 2p checkpoint.txt)
ROOT=$(sed -n 3p checkpoint.txt | base64 -d | hex)
grep -q "\"leaf_index\":$N,\"tree_size\":$SIZE}\$" "proofs/$N.json" || fail "the proof is for another leaf or tree size"
R=$({ printf '\000'; cat "leaves/$N.json"; } | sha256sum | cut -c1-64)
FN=$N; SN=$((SIZE - 1))
for P in $(sed 's/.*"audit_path":\[\([^]]*\)\].*/\1/' "proofs/$N.json" | tr ',' ' ' | tr -d '"'); do
  test "$SN" -gt 0 || fail "proof too long"
  P=$(printf %s "$P" | base64 -d | hex)
  if [ $((FN % 2)) -eq 1 ] || [ "$FN" -eq "$SN" ]; then
    R=$({ printf '\001'; unhex "$P"; unhex "$R"; } | sha256sum | cut -c1-64)
    while [ $((FN % 2)) -eq 0 ] && [ "$FN" -ne 0 ]; do FN=$((FN / 2)); SN=$((SN / 2)); done
  else
    R=$({ printf '\001'; unhex "$R"; unhex "$P"; } | sha256sum | cut -c1-64)
  fi
  FN=$((FN / 2)); SN=$((SN / 2))
done
test "$SN" -eq 0 && test "$R" = "$ROOT" || fail "the inclusion proof does not lead to the checkpoint's root"
echo "inclusion: leaf $N is in the tree of size $SIZE"

# 7. the checkpoint is signed by the log key (note text: every line up to the blank line)
awk 'NF == 0 { exit } { print }' checkpoint.txt > .check/note.txt
NAME=$(cut -d+ -f1 log.vkey); KID=$(cut -d+ -f2 log.vkey | tr 'A-F' 'a-f'); KEY=$(cut -d+ -f3- log.vkey)
test "$(printf %s "$KEY" | base64 -d | hexn 1)" = 01 || fail "log.vkey is not an Ed25519 log key"
test "$({ printf '%s\n' "$NAME"; printf %s "$KEY" | base64 -d; } | sha256sum | cut -c1-8)" = "$KID" || fail "bad log.vkey"
SIG=$(awk -v n="$NAME" 'f && $2 == n { print $3 } NF == 0 { f = 1 }' checkpoint.txt | while read -r B; do
  if [ "$(printf %s "$B" | base64 -d | hexn 4)" = "$KID" ]; then echo "$B"; fi; done | head -n 1)
test -n "$SIG" || fail "the checkpoint carries no signature by the log key"
printf %s "$SIG" | base64 -d | tail -c +5 > .check/note.sig
pem "$KEY" .check/log.pem
openssl pkeyutl -verify -pubin -inkey .check/log.pem -rawin -in .check/note.txt -sigfile .check/note.sig

# 8. each witness cosignature
for W in witnesses/*.vkey; do
  [ -e "$W" ] || continue
  WNAME=$(cut -d+ -f1 "$W"); WKID=$(cut -d+ -f2 "$W" | tr 'A-F' 'a-f'); WKEY=$(cut -d+ -f3- "$W")
  test "$(printf %s "$WKEY" | base64 -d | hexn 1)" = 04 || fail "$W is not a cosignature/v1 key"
  test "$({ printf '%s\n' "$WNAME"; printf %s "$WKEY" | base64 -d; } | sha256sum | cut -c1-8)" = "$WKID" || fail "bad $W"
  COSIG=$(awk -v n="$WNAME" 'f && $2 == n { print $3 } NF == 0 { f = 1 }' checkpoint.txt | while read -r B; do
    if [ "$(printf %s "$B" | base64 -d | hexn 4)" = "$WKID" ]; then echo "$B"; fi; done | head -n 1)
  if [ -z "$COSIG" ]; then echo "$W: no cosignature by this witness"; continue; fi
  TS=0
  for B in $(printf %s "$COSIG" | base64 -d | od -An -tu1 -v -j4 -N8); do TS=$((TS * 256 + B)); done
  echo "$WNAME cosigned at $TS"
  { printf 'cosignature/v1\ntime %s\n' "$TS"; cat .check/note.txt; } > .check/cosig.msg
  printf %s "$COSIG" | base64 -d | tail -c +13 > .check/cosig.sig
  pem "$WKEY" .check/witness.pem
  openssl pkeyutl -verify -pubin -inkey .check/witness.pem -rawin -in .check/cosig.msg -sigfile .check/cosig.sig
done

# 9. media files hash to their names
for f in media/*; do
  [ -e "$f" ] || continue
  test "$(sha256sum "$f" | cut -c1-64)" = "${f#media/}" || fail "$f does not hash to its name"
  echo "media: $f matches its name"
done
echo "entry $N checked"

# 10. the case's chain: every envelope is of this case (or the key registry), seq runs 1, 2, 3, ...
#     up to the manifest's count, and each "prev" is the SHA-256 of the case's previous envelope
CASE=$(awk -F'"' '/^  "case_id":/ { print $4 }' manifest.json)
EVENTS=$(sed -n 's/^  "case_events": \([0-9]*\),*$/\1/p' manifest.json)
for f in $(ls envelopes | sort -n); do
  field payload "envelopes/$f" | base64 -d | sed 's/.*"case_id":"\([^"]*\)","event_id".*"prev":\([^,]*\),"seq":\([0-9]*\),"signer".*/\1 \3 \2/'
  echo " $(sha256sum "envelopes/$f" | cut -c1-64)"
done | awk -v c="$CASE" -v events="$EVENTS" -v registry=00000000-0000-0000-0000-000000000000 '
  $1 == registry { next }
  $1 != c { print "an envelope of another case: " $1; bad = 1; next }
  { want = last == "" ? "null" : "\"" last "\"" }
  $2 != seq + 1 || $3 != want { print "chain broken at seq " $2; bad = 1 }
  { seq = $2; last = $4 }
  END { if (seq != events) { print "the case ends at seq " seq ", the manifest announces " events; bad = 1 } exit bad }
' || fail "the case's chain"
echo "chain: case $CASE, seq 1..$EVENTS, every prev matches"
@END@

To check every entry, run the script once for each file in envelopes/.

9. WHAT THE SCRIPT DOES NOT CHECK
---------------------------------
The script checks, for one entry: the manifest, the entry's Ed25519 signature by the key that a
KeyRegistered envelope of the bundle registers under that key id, its leaf, its inclusion proof
against checkpoint.txt, the checkpoint's signature by log.vkey, each cosignature by a key in
witnesses/, and the media files' names; and for the whole case, its chain (step 10). It does NOT
check:
  - that the JSON files are strict, canonical JSON (it reads fields with sed and relies on it);
  - that the signer's key was registered, active and not revoked at the entry's position, by whom
    it was registered (an active admin key), or that its role may sign this type of event;
  - that the first registry envelope is the trust root, self-signed, with the key id the City
    published (compare the trust root key id at the top of this file by eye);
  - the other entries' signatures, leaves and proofs (run it for each), nor that every statement
    names this ledger's origin ("ledger");
  - the case rules (section 7), the access count in the manifest, or how many witnesses a policy
    requires;
  - the access log (section 6a): its entries, proofs and access checkpoint;
  - that the keys in log.vkey and witnesses/ are the real ones: obtain them independently.
`evidence-ledger verify` and verify.html check all of these.

What the bundle cannot prove by itself: that no event of the case was appended after this
checkpoint (compare with a newer bundle or the ledger's public checkpoints), and that the keys in it
are the real ones (obtain the trust root key id, the log verifier key and the witness keys from the
City and the witnesses, not from the bundle).
"""


def guide_text(origin: str, case_id: str, size: int, trust_root: str, example_index: int) -> str:
    text = _GUIDE + _SCRIPT_PART
    for placeholder, value in (
        ("@ORIGIN@", origin),
        ("@CASE@", case_id),
        ("@SIZE@", str(size)),
        ("@ROOTKEY@", trust_root),
        ("@N@", str(example_index)),
        ("@BEGIN@", SCRIPT_BEGIN),
        ("@END@", SCRIPT_END),
    ):
        text = text.replace(placeholder, value)
    return text


def guide_script(text: str) -> str:
    """The shell script embedded in a guide."""
    return text.split(SCRIPT_BEGIN + "\n", 1)[1].split(SCRIPT_END, 1)[0]
