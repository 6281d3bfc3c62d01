# The two commands a new user runs: `make serve` and `make test`. Both install what they need.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-unihpr

.PHONY: setup test serve cache model clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	scripts/install.sh $(VENV) cpu,build,test
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest

# Serve the default bundle on port 8000, building it first from the shipped weights and sample if absent.
BUNDLE ?= bundles/default
PORT ?= 8000
serve: setup
	scripts/serve.sh $(VENV) $(BUNDLE) $(PORT)

# The full pose cache from ../shared/data/bandai-namco-motion (about 15 s on 2 cores).
cache: setup
	$(BIN)/unihpr-build cache

# The default model and its report: UniHPR, the Martinez baselines, the loss study, evaluation, shipped weights.
RUN ?= runs/default
model: setup
	$(BIN)/unihpr-build cache
	$(BIN)/unihpr-build train --run $(RUN)
	$(BIN)/unihpr-build baselines --run $(RUN)
	$(BIN)/unihpr-build study --run $(RUN)
	$(BIN)/unihpr-build generalise --run $(RUN)
	$(BIN)/unihpr-build evaluate --run $(RUN)
	$(BIN)/unihpr-build weights --run $(RUN) --report reports/eval.json

clean:
	rm -rf $(VENV) .cache .pytest_cache
