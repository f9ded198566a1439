# Every target creates and uses its own virtualenv, so a fresh machine needs only
# python3 (>= 3.11) and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROTOS := $(wildcard protos/fero/v1/*.proto)
PORT ?= 4000
DATA_DIR ?= ./fero-data

.PHONY: run cluster test proto proto-check bench clean venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# A single node with real storage in ./fero-data, listening on 127.0.0.1:$(PORT).
run: venv
	@echo "fero: starting a node on 127.0.0.1:$(PORT), data in $(DATA_DIR)."
	@echo "fero: try, in another shell:  $(VENV)/bin/fero add visits 1 && $(VENV)/bin/fero-ls"
	$(VENV)/bin/fero serve --host 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

# Three nodes on 127.0.0.1:4001-4003 (data in ./fero-cluster), shown by fero-ls; Ctrl-C stops them.
cluster: venv
	$(PY) -m fero.cli.cluster --nodes 3 --base-port 4001 --data-dir ./fero-cluster

test: venv proto-check
	$(PY) -m pytest -q

# Regenerates fero/v1 from protos/fero/v1.
proto: venv
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)

# Fails if the committed generated code differs from what `make proto` would write.
proto-check: venv
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS) && \
	for f in $$tmp/fero/v1/*; do \
	  cmp -s $$f fero/v1/$$(basename $$f) || { echo "proto drift: fero/v1/$$(basename $$f) differs from protos/ (run 'make proto')"; rm -rf $$tmp; exit 1; }; \
	done; \
	for f in fero/v1/*_pb2*.py*; do \
	  [ -e $$tmp/fero/v1/$$(basename $$f) ] || { echo "proto drift: fero/v1/$$(basename $$f) has no .proto (run 'make proto')"; rm -rf $$tmp; exit 1; }; \
	done; \
	rm -rf $$tmp; echo "proto-check: fero/v1 matches protos/"

# matplotlib draws the PNGs; it is the benchmarks' own, not fero's, so it is not in pyproject.
bench: venv
	$(PY) -m pip install -q matplotlib
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
