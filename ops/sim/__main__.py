"""``python -m ops.sim``: the state-wide load simulation (see ``ops/sim/run.py`` and docs/scaling.md)."""

from ops.sim.run import main

main()
