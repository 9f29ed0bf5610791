"""`python -m sensorpipe` runs the same CLI as the `sensorpipe` console script."""

from sensorpipe.cli import main

main()
