"""Ordinary police free text: what the personal-data guard must let through.

Sentences an officer, supervisor or prosecutor would write in a narrative, summary, reason or
note, full of numbers that are not personal data: times, incident dates, case and report numbers,
badge numbers, device ids, plates, addresses of public places, counts, timestamps, hashes, UUIDs.
``BLOCKS`` are the same kinds of pieces for generated text.
"""

from __future__ import annotations

ORDINARY = [
    "At 14:05 on 2026-11-02 four agents in plain clothes stopped a grey van outside 800 Massachusetts Ave.",
    "Caller reported masked officers near Central Square at about 2:30 pm; units arrived at 2:41 pm.",
    "Officer Rivera (badge #1234) activated body-worn camera AXON-BW-7731 at 14:07 and recorded 18 minutes.",
    "Incident occurred on 11/02/2026 between 14:00 and 14:20 at Massachusetts Ave and Prospect St.",
    "See related report 26-004512 and case CPD-2026-00123 for the earlier stop on Main St.",
    "Vehicle: white Ford Transit, Massachusetts plate 7XY-512, parked facing north on Hampshire St.",
    "Three of the 4 federal officers wore vests marked POLICE; none displayed a name or badge number.",
    "The driver's side window of a 2014 Honda Civic was broken; glass covered about 2 square meters.",
    "Footage file sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 copied to the vault.",
    "Transferred to the evidence unit for redaction under request 550e8400-e29b-41d4-a716-446655440000.",
    "Hold placed at 2026-11-02T16:30:00Z by the Middlesex DA pending review of incident inc-2026-0042.",
    "Hold lifted after the DA confirmed on 2026-11-20 that no investigation is open.",
    "Redacted copy blurs the faces of 7 bystanders and the plate of 1 private vehicle.",
    "Released on the city website at 09:00 on 12/01/2026 under the executive order, section 3(b).",
    "Referral to the Attorney General's Civil Rights Division, ref AG-CRD-2026-0117.",
    "Received; assigned to ADA Okafor, Middlesex docket 2681CR000457.",
    "Case closed after referral; 2 files released, 1 derivative withheld pending appeal.",
    "Reopened on 2027-01-15 at the AG's request after new footage surfaced.",
    "Custody moved from Cruiser 14 locker 3 to the Evidence Unit, shelf B-17, at 17:45.",
    "Purpose: prepare the release copy for the public records request PRR-2026-3318.",
    "Bystander video (1920x1080, 30 fps, 4 min 12 s) shows agents leaving at 14:19:30.",
    "Dispatch logged the 911 call at 14:03:12 and sent cars 22 and 31 to the scene.",
    "Witness stated the agents arrived in 3 unmarked SUVs and left toward Route 2 around 14:25.",
    "The store at 1 Broadway, Cambridge MA 02142, provided its camera export (camera 5, 14:00-14:30).",
    "Measured damage: 3 dents, 1 broken mirror, estimated repair cost $1,250.",
    "Agents identified themselves as ICE only after 6 minutes; one showed a card reading ERO Boston.",
    "Officers counted roughly 40 to 50 people gathered on the sidewalk by 14:15.",
    "The checkpoint at tree size 1048576 covers leaf 524287 of this case.",
    "Timecode 00:03:41 to 00:05:02 shows an officer striking the window with a baton.",
    "Sgt. Chen reviewed the hold on 2026-11-05 and again on Nov 12, 2026; both reviews kept it.",
    "Report received through the online form at 21:14 (ticket 2026-11-02-0193).",
    "Incident at the MBTA Red Line entrance, Central Square, platform level, about 30 m from the turnstiles.",
    "The release is the redaction ftg-1-redacted, 12.4 MB, media type video/mp4.",
    "Device BWC-0042 firmware 4.2.17 synced at 18:02; battery at 61%.",
    "Officers arrived on scene within 4 minutes (14:03 call, 14:07 arrival) and left at 15:10.",
    "Interview scheduled for 11/09/2026 at 10:00 am at CPD headquarters, 125 6th St.",
    "Public meeting on 2026-12-03 discussed 12 incidents from October and November.",
    "Two agents (about 1.8 m tall) wore balaclavas; a third wore a cap marked HSI.",
    "Evidence bag number EB-2026-114520 sealed at 17:50 by Det. Rivera.",
    "Per order 2025-17 §4, footage of federal conduct is released unless under active investigation.",
    "Radio log entry 0457 at 14:09:45 notes that the van's rear door was open.",
    "The caller, a resident of the neighborhood, asked that their identity be sealed.",
    "El testigo vio a cuatro agentes enmascarados a las 14:05 cerca de Central Square.",
    "Testemunha disse que os agentes chegaram às 14h05 em três carros sem identificação.",
    "Temwen an di 4 ajan te rive a 2:30 pm bò Central Square.",
    "目撃者によると、14:05に4人の捜査官が到着した。",
    "Агенты прибыли в 14:05; инцидент CPD-2026-00123.",
    "Age of the footage at release: 29 days; retention class 7 years.",
    "The officer, age 34 at the time, had worked the district since 2019.",
    "Case number 2026-004512 was merged into CPD-2026-00123 on 2026-11-03.",
    "Bundle digest 9f86d081884c7d659a2feaf0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 sent with the referral.",
    "Unit 12B, 1350 Massachusetts Ave (City Hall Annex) lobby camera, 13:58 to 14:32.",
]

#: pieces of ordinary text for generated sentences
BLOCKS = [
    "at 14:05", "at 2:30 pm", "around 9:15 am", "on 2026-11-02", "on 11/02/2026", "on Nov 2, 2026",
    "case CPD-2026-00123", "report 26-004512", "badge #1234", "badge #0457", "device AXON-BW-7731",
    "camera BWC-0042", "plate 7XY-512", "plate MA 1ABC23", "at 800 Massachusetts Ave", "in Central Square",
    "near 1 Broadway", "4 agents", "12 bystanders", "3 vehicles", "2026-11-02T14:05:00Z",
    "2026-11-02T14:05:00.123Z", "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "id 550e8400-e29b-41d4-a716-446655440000", "leaf 524287", "size 1048576", "$1,250", "18 minutes",
    "the officer", "the caller", "federal agents", "ICE", "arrived", "left", "recorded", "the van",
    "near the café", "a las 14:05", "às 14h05", "section 3(b)", "ref AG-CRD-2026-0117", "car 22",
    "age of the footage 29 days", "firmware 4.2.17", "12.4 MB", "1920x1080", "timecode 00:03:41",
]
