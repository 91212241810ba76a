"""`python -m rung.cli`: what `accelerate launch ... -m rung.cli tune PATH` runs in each
process (README, examples/accelerate/)."""

from rung.cli import main

main()
