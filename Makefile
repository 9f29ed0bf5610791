.PHONY: setup run test bench down
setup:  ## install Debian packages, .venv and the pinned jars (idempotent)
	scripts/bootstrap.sh
run:    ## set up, then the whole pipeline with 10 simulated sensors and a live view (docs/run.md)
	scripts/run
test:   ## set up, lint, type-check, run the whole suite against real services
	scripts/test
bench:  ## end-to-end and per-stage throughput and latency on a stack of its own (`sensorpipe bench`)
	.venv/bin/sensorpipe bench
down:   ## stop the local stack (data stays)
	.venv/bin/sensorpipe stack down
