"""The free-text guard's cost per event, beside what the append path already spends per event.

    python -m ops.bench.bench_free_text [--events 20000] [--runs 5]

Times, over the same events and in the same run: the guard (``domain.personal_data.scan_event`` on
the parsed event), strict body parsing (``domain.events.parse_body``) and the Ed25519 verification
of the event's DSSE message: the last two are the append path's per-event work the guard joins.
Events: a typical ``IncidentDocumented`` of about 600 bytes of canonical JSON whose narrative is
full of times, dates, counts and ids (digits defeat the guard's quick "no digit and no @" pass, so
this is its costly case), an ``InvestigationHoldPlaced`` with a short reason, and a 20,000-character
narrative (the largest a field may be). Reports microseconds per event (the fastest of the runs).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.events import parse_body
from domain.personal_data import scan_event
from ledger.envelope.canonical import canonical

NARRATIVE = (
    "At 14:05 on 2026-11-02 four agents in plain clothes stopped a grey van outside 800 Massachusetts Ave. "
    "Officer Rivera (badge #1234) activated camera AXON-BW-7731 at 14:07 and recorded 18 minutes; see "
    "report 26-004512 and case CPD-2026-00123. Plate 7XY-512. Three of the 4 officers wore vests marked "
    "POLICE; none displayed a name. Caller left the scene at 2:30 pm."
)
INCIDENT = {
    "incident_id": "inc-2026-0042",
    "occurred_from": "2026-11-02T14:00:00Z",
    "occurred_to": "2026-11-02T14:20:00Z",
    "location": "Massachusetts Ave at Prospect St, Central Square",
    "narrative": NARRATIVE,
    "conduct": ["property_damage"],
    "federal_officials": [{"agency": "ICE", "count": 4, "identifiable_uniform": False, "face_covered": True,
                           "body_camera_worn": False, "identified_themselves": False}],
}
HOLD = {"hold_id": "hold-1", "scope": "case", "authority": "middlesex_da", "reason": "Active DA investigation"}
LONG = {**INCIDENT, "narrative": (NARRATIVE + " ") * (20000 // (len(NARRATIVE) + 1))}


def per_event_us(work: Callable[[], Any], events: int, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(events):
            work()
        samples.append((time.perf_counter() - start) / events * 1e6)
    return min(samples)  # the least disturbed run: other work on the machine only adds time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    for name, event_type, body, events in [
        ("typical", "IncidentDocumented", INCIDENT, args.events),
        ("short", "InvestigationHoldPlaced", HOLD, args.events),
        ("20k narrative", "IncidentDocumented", LONG, max(1, args.events // 50)),
    ]:
        event = parse_body(event_type, 1, body)
        assert scan_event(event) is None, "the benchmark's text must pass the guard"
        message = canonical(body)
        signature = key.sign(message)
        guard = per_event_us(lambda e=event: scan_event(e), events, args.runs)
        parse = per_event_us(lambda t=event_type, b=body: parse_body(t, 1, b), events, args.runs)
        verify = per_event_us(lambda m=message, s=signature: public.verify(s, m), events, args.runs)
        print(
            f"{name:13} {event_type:23} {len(message):6,} bytes: guard {guard:7.1f} µs/event, "
            f"parse_body {parse:6.1f} µs, Ed25519 verify {verify:5.1f} µs "
            f"(guard = {guard / (parse + verify):.0%} of parse + verify)"
        )


if __name__ == "__main__":
    main()
