"""The modelled load of a state-wide deployment: 351 Massachusetts municipalities, one log each.

Every number here is either sourced (said where from) or an assumption (said so); change the
assumptions in :class:`Assumptions` and the model follows. The model is deliberately generous (an
upper bound): it counts every incident that would open a case in a department's ledger at the rate
of *all* Part I crimes, while the ledger's scope (incidents involving federal officials, their
footage, holds, releases and referrals) is a small part of a department's work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

#: Massachusetts has 351 cities and towns (Massachusetts Secretary of the Commonwealth); every one
#: of them is modelled as one department with its own log.
MUNICIPALITIES = 351
#: Resident population of Massachusetts, 2020 Census (P.L. 94-171 redistricting counts).
STATE_POPULATION = 7_029_917
#: The 25 largest municipalities, 2020 Census populations rounded to the hundred (check against the
#: Census table before quoting one city's figure; the model only needs their sizes roughly right).
LARGEST: tuple[tuple[str, int], ...] = (
    ("Boston", 675_600), ("Worcester", 206_500), ("Springfield", 155_900), ("Cambridge", 118_400),
    ("Lowell", 115_600), ("Brockton", 105_600), ("Quincy", 101_600), ("Lynn", 101_300),
    ("New Bedford", 101_100), ("Fall River", 94_000), ("Lawrence", 89_100), ("Newton", 88_900),
    ("Somerville", 81_000), ("Framingham", 72_400), ("Haverhill", 67_800), ("Malden", 66_300),
    ("Waltham", 65_200), ("Brookline", 63_200), ("Revere", 62_200), ("Plymouth", 61_200),
    ("Medford", 59_700), ("Taunton", 59_400), ("Weymouth", 57_400), ("Chicopee", 55_600),
    ("Peabody", 54_500),
)
#: Assumption: the other 326 towns' populations follow a log-normal size distribution with this
#: spread (sigma of ln population), its median fitted so that the state total is the Census total.
#: Massachusetts towns range from under 100 residents (Gosnold) to about 50,000.
SMALL_TOWN_SIGMA = 1.0


@dataclass(frozen=True)
class Department:
    code: str  # case-number prefix and actor name part, e.g. "MA004"
    name: str
    population: int


@dataclass(frozen=True)
class Assumptions:
    """Rates per department, scaled by population from a city like Cambridge (118,400 residents)."""

    #: Cases opened per 1,000 residents per year. Assumption, an upper bound: Cambridge's Annual
    #: Crime Reports (cambridgema.gov/cpd, Crime Analysis Unit) count Part I crimes in the low
    #: thousands a year, about 25 per 1,000 residents; the model opens a ledger case for every one.
    cases_per_1000_residents: float = 25.0
    #: Events per case by type (assumption: one report and one documentation, three footage items
    #: (two body-worn cameras, one city or resident camera), a custody transfer for each to the
    #: evidence unit, one redacted derivative, a hold placed and lifted, a release, a referral and
    #: its acknowledgement, the closing; two EvidenceAccessed events the server appends per case
    #: when files are downloaded).
    events_per_case: dict[str, float] = field(default_factory=lambda: {
        "CaseOpened": 1, "ReportReceived": 1, "IncidentDocumented": 1, "FootageCaptured": 3,
        "CustodyTransferred": 3, "FootageDerivativeCreated": 1, "InvestigationHoldPlaced": 1,
        "InvestigationHoldLifted": 1, "FootageReleased": 1, "ReferralMade": 1, "ReferralAcknowledged": 1,
        "CaseClosed": 1, "EvidenceAccessed": 2,
    })
    #: Peak-hour appends over the yearly mean (assumption: police activity by hour of day varies by
    #: about 2x between trough and peak, and body-worn cameras dock at shift change, so footage
    #: events bunch; 3x covers both).
    peak_hour_factor: float = 3.0
    #: Public inclusion-proof reads per event over its life (assumption: defence, prosecutor, court,
    #: press, the public pages' visitors and monitors each check an event a few times).
    proof_reads_per_event: float = 10.0
    #: Witnesses cosigning each department's log (assumption: its district attorney's office, the
    #: Attorney General, one more; Massachusetts has 11 DA districts, so witnesses are shared).
    witnesses_per_log: int = 3
    #: Seconds between checkpoints of each log; every witness fetches one consistency proof per
    #: checkpoint (the checkpointer's default interval is an operator setting; assumption: 60 s).
    checkpoint_interval_s: float = 60.0


def departments(count: int = MUNICIPALITIES) -> list[Department]:
    """The first ``count`` of the 351 departments, largest first, with modelled populations."""
    if not 1 <= count <= MUNICIPALITIES:
        raise ValueError(f"departments must be 1..{MUNICIPALITIES}")
    towns = MUNICIPALITIES - len(LARGEST)
    small = sorted(_truncated_lognormal(towns, STATE_POPULATION - sum(pop for _, pop in LARGEST)), reverse=True)
    everyone = [(name, pop) for name, pop in LARGEST] + [(f"Town {i + 1}", pop) for i, pop in enumerate(small)]
    return [Department(f"MA{i + 1:03d}", name, pop) for i, (name, pop) in enumerate(everyone)][:count]


def _truncated_lognormal(count: int, total: int) -> list[int]:
    """``count`` quantiles of a log-normal (spread SMALL_TOWN_SIGMA) cut off below the smallest of the
    largest 25, its median found by bisection so that the quantiles add up to ``total``."""
    cap = math.log(LARGEST[-1][1])

    def sizes(mu: float) -> list[float]:
        top = NormalDist().cdf((cap - mu) / SMALL_TOWN_SIGMA)
        return [math.exp(mu + SMALL_TOWN_SIGMA * NormalDist().inv_cdf((i + 0.5) / count * top)) for i in range(count)]

    low, high = 0.0, cap
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if sum(sizes(mid)) < total else (low, mid)
    return [round(s) for s in sizes(low)]


@dataclass(frozen=True)
class Load:
    """The modelled load: per year, mean per second, peak-hour per second."""

    events_per_year: float
    mean_appends_s: float
    peak_appends_s: float
    peak_proof_reads_s: float  # inclusion proofs at the peak hour plus witnesses' consistency proofs
    witness_proofs_s: float


SECONDS_PER_YEAR = 365.25 * 24 * 3600


def events_per_case(a: Assumptions) -> float:
    return sum(a.events_per_case.values())


def department_events_per_year(dept: Department, a: Assumptions) -> float:
    return dept.population / 1000 * a.cases_per_1000_residents * events_per_case(a)


def load(depts: list[Department], a: Assumptions) -> Load:
    per_year = sum(department_events_per_year(d, a) for d in depts)
    mean = per_year / SECONDS_PER_YEAR
    peak = mean * a.peak_hour_factor
    witness = len(depts) * a.witnesses_per_log / a.checkpoint_interval_s
    return Load(per_year, mean, peak, peak * a.proof_reads_per_event + witness, witness)


def describe(depts: list[Department], a: Assumptions) -> list[str]:
    """The model's lines for the report."""
    modelled = load(depts, a)
    population = sum(d.population for d in depts)
    cambridge = next((d for d in depts if d.name == "Cambridge"), None)
    lines = [
        f"model: {len(depts)} departments, {population:,} residents; {a.cases_per_1000_residents:g} cases per"
        f" 1,000 residents a year, {events_per_case(a):g} events per case, peak-hour factor {a.peak_hour_factor:g}",
        f"model: {modelled.events_per_year:,.0f} events/year; appends mean {modelled.mean_appends_s:.3f}/s,"
        f" peak hour {modelled.peak_appends_s:.3f}/s",
        f"model: public proof reads at the peak hour {modelled.peak_proof_reads_s:.2f}/s"
        f" ({a.proof_reads_per_event:g} inclusion proofs per event, plus {modelled.witness_proofs_s:.2f}/s"
        f" consistency proofs: {a.witnesses_per_log} witnesses per log, a checkpoint every"
        f" {a.checkpoint_interval_s:g} s)",
    ]
    largest = depts[0]
    lines.append(
        f"model: largest department ({largest.name}, {largest.population:,}):"
        f" {department_events_per_year(largest, a):,.0f} events/year"
    )
    if cambridge is not None:
        lines.append(f"model: Cambridge: {department_events_per_year(cambridge, a):,.0f} events/year")
    lines.append(
        f"model: smallest modelled department ({depts[-1].name}, {depts[-1].population:,}):"
        f" {department_events_per_year(depts[-1], a):,.0f} events/year"
    )
    return lines
