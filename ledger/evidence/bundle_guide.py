"""HOW-TO-VERIFY.txt: the plain-text guide shipped in every bundle.

It explains every format in the bundle and gives a POSIX shell script (between the BEGIN/END SCRIPT
lines) that checks one entry completely with sha256sum, base64, openssl and python3 one-liners.
``tests/ledger/evidence/test_bundle.py`` runs that script on a real bundle.
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
`evidence-ledger verify` command (see docs/verification.md of the project) or by hand with standard
tools, as described here. Nothing in this bundle needs to be trusted except three public keys that
you obtain independently: the trust root key id (above), the log verifier key and, if you require
them, the witnesses' verifier keys.

With the verifier installed, give it the keys you obtained from the City, not the copies in here:

    evidence-ledger verify bundle.zip --vkey LOG_VERIFIER_KEY --trust-root TRUST_ROOT_KEY_ID

(or pin them once with `evidence-ledger trust pin --origin @ORIGIN@ --vkey ... --trust-root ...`).
It says VERIFIED, exit code 0, only when nothing is wrong and both keys are pinned; without them it
says UNPINNED, exit code 4: the bundle was then only checked against its own copies of the keys.

1. FILES
--------
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

7. THE CASE RULES
-----------------
The events of the case, in seq order, must obey the executive order's rules: footage is released
only when no active investigation hold covers it; a referral goes to the Middlesex District
Attorney or the Massachusetts Attorney General and is acknowledged by a prosecutor key of that
authority; a closed case accepts only a reopening or an access record. `evidence-ledger verify`
replays them; by hand, list the statements in order and read them:

    for f in $(ls envelopes | sort -n); do python3 -c 'import base64,json,sys; s=json.loads(base64.b64decode(json.load(open(sys.argv[1]))["payload"])); print(s["case_id"][:8], s["seq"], s["type"], s["occurred_at"], s["signer"][:16])' "envelopes/$f"; done

8. A SCRIPT THAT CHECKS ONE ENTRY COMPLETELY
-------------------------------------------
Unzip the bundle (`unzip bundle.zip -d bundle && cd bundle`), save the lines between the BEGIN and
END lines as check.sh and run `sh check.sh N` for any leaf index N (default @N@, the case's first
event). It writes its scratch files to .check/ and stops at the first failure.

@BEGIN@
set -eu
N=${1:-@N@}
T=application/vnd.evidence-ledger.event.v1+json
SPKI='\\060\\052\\060\\005\\006\\003\\053\\145\\160\\003\\041\\000'
mkdir -p .check

# 1. every file against the manifest
python3 -c 'import json; [print(f["sha256"] + "  " + f["path"]) for f in json.load(open("manifest.json"))["files"]]' | sha256sum -c --quiet -
echo "manifest: every listed file matches"

# 2. the statement and the signature inside the envelope
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["payload"])' "envelopes/$N.json" | base64 -d > .check/statement.json
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signatures"][0]["sig"])' "envelopes/$N.json" | base64 -d > .check/sig.bin
SIGNER=$(python3 -c 'import json; print(json.load(open(".check/statement.json"))["signer"])')

# 3. the signer's public key, from its KeyRegistered envelope in this bundle
PUB=$(python3 -c 'import base64,glob,json,sys
for f in glob.glob("envelopes/*.json"):
    s = json.loads(base64.b64decode(json.load(open(f))["payload"]))
    if s["type"] == "KeyRegistered" and s["body"]["key_id"] == sys.argv[1]: print(s["body"]["public_key"])' "$SIGNER")
test "$(printf %s "$PUB" | base64 -d | sha256sum | cut -c1-64)" = "$SIGNER"
(printf "$SPKI"; printf %s "$PUB" | base64 -d) > .check/signer.der
openssl pkey -pubin -inform DER -in .check/signer.der -out .check/signer.pem

# 4. Ed25519 over the DSSE PAE
printf 'DSSEv1 %d %s %d ' ${#T} "$T" $(($(wc -c < .check/statement.json))) > .check/pae.bin
cat .check/statement.json >> .check/pae.bin
openssl pkeyutl -verify -pubin -inkey .check/signer.pem -rawin -in .check/pae.bin -sigfile .check/sig.bin

# 5. the leaf commits to these envelope bytes at this index
ENV_SHA=$(sha256sum "envelopes/$N.json" | cut -c1-64)
python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); assert l["envelope_sha256"] == sys.argv[2] and l["index"] == int(sys.argv[3]) and l["v"] == 1, "leaf mismatch"' "leaves/$N.json" "$ENV_SHA" "$N"
echo "leaf $N: commits to envelope $ENV_SHA"

# 6. the inclusion proof leads to the checkpoint's root (RFC 9162 2.1.3.2)
python3 -c 'import base64,hashlib,json,sys
n = int(sys.argv[1]); H = lambda b: hashlib.sha256(b).digest()
lines = open("checkpoint.txt", "rb").read().split(b"\\n"); size, root = int(lines[1]), base64.b64decode(lines[2])
r, fn, sn = H(b"\\0" + open(f"leaves/{n}.json", "rb").read()), n, size - 1
for p in map(base64.b64decode, json.load(open(f"proofs/{n}.json"))["audit_path"]):
    assert sn > 0, "proof too long"
    if fn & 1 or fn == sn:
        r = H(b"\\1" + p + r)
        while fn & 1 == 0 and fn: fn, sn = fn >> 1, sn >> 1
    else:
        r = H(b"\\1" + r + p)
    fn, sn = fn >> 1, sn >> 1
assert sn == 0 and r == root, "inclusion proof does not lead to the checkpoint root"
print(f"inclusion: leaf {n} is in the tree of size {size}")' "$N"

# 7. the checkpoint is signed by the log key
python3 -c 'import base64,hashlib
note = open("checkpoint.txt", "rb").read(); cut = note.index(b"\\n\\n") + 1
name, kid, key = open("log.vkey").read().strip().split("+", 2); raw = base64.b64decode(key)
assert raw[0] == 1 and hashlib.sha256(name.encode() + b"\\n" + raw).digest()[:4].hex() == kid.lower(), "bad log.vkey"
sigs = [base64.b64decode(l[2:].split(" ")[1]) for l in note[cut + 1:].decode().splitlines() if l[2:].split(" ")[0] == name]
sig = [s[4:] for s in sigs if s[:4].hex() == kid.lower()][0]
open(".check/note.txt", "wb").write(note[:cut]); open(".check/note.sig", "wb").write(sig)
open(".check/log.der", "wb").write(bytes.fromhex("302a300506032b6570032100") + raw[1:])'
openssl pkey -pubin -inform DER -in .check/log.der -out .check/log.pem
openssl pkeyutl -verify -pubin -inkey .check/log.pem -rawin -in .check/note.txt -sigfile .check/note.sig

# 8. each witness cosignature
for W in witnesses/*.vkey; do
  [ -e "$W" ] || continue
  rm -f .check/cosig.msg .check/cosig.sig .check/witness.der
  python3 -c 'import base64,hashlib,sys
note = open("checkpoint.txt", "rb").read(); cut = note.index(b"\\n\\n") + 1
name, kid, key = open(sys.argv[1]).read().strip().split("+", 2); raw = base64.b64decode(key)
assert raw[0] == 4 and hashlib.sha256(name.encode() + b"\\n" + raw).digest()[:4].hex() == kid.lower(), "bad witness key"
for l in note[cut + 1:].decode().splitlines():
    n, b = l[2:].split(" "); d = base64.b64decode(b)
    if n == name and d[:4].hex() == kid.lower():
        ts = int.from_bytes(d[4:12], "big"); print(name, "cosigned at", ts)
        open(".check/cosig.msg", "wb").write(b"cosignature/v1\\ntime %d\\n" % ts + note[:cut])
        open(".check/cosig.sig", "wb").write(d[12:])
        open(".check/witness.der", "wb").write(bytes.fromhex("302a300506032b6570032100") + raw[1:])' "$W"
  if [ -e .check/cosig.sig ]; then
    openssl pkey -pubin -inform DER -in .check/witness.der -out .check/witness.pem
    openssl pkeyutl -verify -pubin -inkey .check/witness.pem -rawin -in .check/cosig.msg -sigfile .check/cosig.sig
  else
    echo "$W: no cosignature by this witness"
  fi
done

# 9. media files hash to their names
for f in media/*; do
  [ -e "$f" ] || continue
  test "$(sha256sum "$f" | cut -c1-64)" = "${f#media/}"
  echo "media: $f matches its name"
done
echo "entry $N checked"
@END@

To check the whole case, run the script for every file in envelopes/, then follow each case event's
"prev" back to the SHA-256 of the previous envelope of the case (sha256sum envelopes/<n>.json), and
confirm that seq runs 1, 2, 3, ... without a gap up to the last event of the case.

What the bundle cannot prove by itself: that no event of the case was appended after this
checkpoint (compare with a newer bundle or the ledger's public checkpoints), and that the keys in it
are the real ones (obtain the trust root key id, the log verifier key and the witness keys from the
City and the witnesses, not from the bundle).
"""


def guide_text(origin: str, case_id: str, size: int, trust_root: str, example_index: int) -> str:
    text = _GUIDE
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
