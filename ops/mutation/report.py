"""Summarise a `mutmut run` of the case rules: the score per module and every surviving mutant.

Run by `make mutation` after `mutmut run`. Reads mutmut's result files (``mutants/<module>.py.meta``)
and exits 1 when fewer than ``--threshold`` percent of the mutants in the case rules were killed.
A mutant counts as killed when a test failed, timed out or the type check rejected it; a mutant
that no test reached counts against the score, like a survivor.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's own exit-code meanings (mutmut/stats.py), restated so the report needs no mutmut import.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          37: "caught by type check", None: "not checked"}
KILLED = {"killed", "timeout", "caught by type check"}
CASE_RULES = ("domain/case.py", "domain/case_evidence.py", "domain/case_lifecycle.py", "domain/case_sealed.py",
              "domain/case_state.py",
              "domain/roles.py")


def results(mutants: Path) -> dict[str, dict[str, str]]:
    """{module path: {mutant name: status}} from mutmut's meta files."""
    found: dict[str, dict[str, str]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants))[: -len(".meta")]
        codes = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
        found[module] = {name: STATUS.get(code, "suspicious") for name, code in codes.items()}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--threshold", type=float, default=90.0)
    args = parser.parse_args(argv)
    by_module = results(args.mutants)
    if not by_module:
        print(f"no mutmut results under {args.mutants}; run `mutmut run` first", file=sys.stderr)
        return 2
    unchecked = [m for statuses in by_module.values() for m, s in statuses.items() if s == "not checked"]
    if unchecked:
        print(f"{len(unchecked)} mutants were not checked; the run did not finish", file=sys.stderr)
        return 2
    total = Counter[str]()
    print(f"{'module':32} {'mutants':>8} {'killed':>7} {'score':>7}")
    for module, statuses in by_module.items():
        counts = Counter(statuses.values())
        tested = len(statuses) - counts["skipped"]
        killed = sum(counts[s] for s in KILLED)
        if module in CASE_RULES:
            total["tested"] += tested
            total["killed"] += killed
        score = 100.0 * killed / tested if tested else 100.0
        print(f"{module:32} {tested:8} {killed:7} {score:6.1f}%")
    score = 100.0 * total["killed"] / total["tested"] if total["tested"] else 0.0
    print(f"\ncase rules ({', '.join(CASE_RULES)}): {total['killed']} of {total['tested']} killed = {score:.1f}%")
    survivors = [(module, name, status) for module, statuses in by_module.items()
                 for name, status in statuses.items() if status not in KILLED | {"skipped"}]
    if survivors:
        print("\nsurvivors (see each with `mutmut show NAME`):")
        for _module, name, status in survivors:
            print(f"  {name}  [{status}]")
    if score < args.threshold:
        print(f"\nFAIL: {score:.1f}% < {args.threshold:.0f}% of the case rules' mutants killed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
