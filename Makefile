# The two commands of this project (see README.md): `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ARGS ?=

.PHONY: help setup test demo bench fuzz clean

help:
	@echo "make demo   run the hardware-free swarm simulation (sets up on first use;"
	@echo "            options: make demo ARGS=\"--uavs 6 --duration 120 --summary-json out.json\")"
	@echo "make test   run every test (sets up on first use)"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make fuzz   long fuzz campaign of every decoder (bench/fuzz; ARGS=\"--target codec\")"
	@echo "make setup  only install/build (.venv + colcon build into install/)"
	@echo "make clean  remove build/, install/, log/ (keeps the venv)"

setup:
	@bash tools/setup_env.sh

test: setup
	@bash tools/run_tests.sh $(ARGS)

# Options go through ARGS, e.g. make demo ARGS="--uavs 6 --duration 120 --summary-json out.json"
demo: setup
	@source tools/env.sh && exec lora-telemetry sim swarm $(ARGS)

# Every benchmark (a few minutes each); one of them: make bench ARGS="latency --duration 60"
bench: setup
	@source tools/env.sh && exec lora-telemetry bench $(if $(ARGS),$(ARGS),all)

# Up to 1e6 inputs / 600 s per target; e.g. make fuzz ARGS="--target gateway --count 100000"
fuzz: setup
	@source tools/env.sh && exec lora-telemetry bench fuzz $(ARGS)

clean:
	rm -rf build install log
