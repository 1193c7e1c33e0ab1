# The course's commands. Every target sets up .venv first if requirements changed (stamp file).
#   make lab        JupyterLab on notebooks/ (JUPYTER_PORT, JUPYTER_TOKEN, JUPYTER_IP, LAB_ARGS: see README)
#   make test       unit tests + every notebook under nbval (strict: stored outputs compared)
#   make execute NB=notebooks/00_Core_Building_Blocks/01_convolution.ipynb   re-execute one notebook in place
#   make execute-all                                                        re-execute every notebook
#   make bench      speed ratios against the PyTorch reference
#   make lint       ruff over dlhelpers, tests, benchmarks, tools and notebooks
#   make interview  build/INTERVIEW.md: every notebook's interview questions in one revision sheet
#   make cards      build/interview.apkg: the same questions as an Anki deck
#   make test-browser  every notebook with an explorer, run in headless JupyterLab + Chromium (screenshots in build/browser/)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
REQ_HASH := $(shell cat requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
JOBS ?= 2

# One environment for tests and for (re-)executing notebooks, so stored outputs reproduce byte for byte.
# CPU_ISA pins the instruction set that torch (ATen), MKL and oneDNN dispatch to: left free, an AVX-512 machine and
# an AVX2 one train to different last bits (measured: 11 notebooks stored on one failed nbval on the other, and
# all but one cell passed again once both ran the AVX2 kernels). Every x86-64 machine of the last decade has AVX2.
CPU_ISA := ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
RUN_ENV := DLHELPERS_DEVICE=cpu DLHELPERS_PROGRESS=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
           PYTHONHASHSEED=0 TQDM_DISABLE=1 PYDEVD_DISABLE_FILE_VALIDATION=1 $(CPU_ISA)
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with .nbval_sanitize.cfg --nbval-cell-timeout 300

# JupyterLab: the project's settings (no news pop-up, no update check) as defaults under the user's own settings.
# On a remote machine: make lab JUPYTER_PORT=8899 LAB_ARGS=--no-browser (token from the environment, not argv).
JUPYTER_PORT ?=
JUPYTER_IP ?= localhost
LAB_ARGS ?=
LAB_FLAGS := --LabApp.app_settings_dir=$(CURDIR)/jupyter-config/lab/settings --ServerApp.ip=$(JUPYTER_IP) \
             $(if $(JUPYTER_PORT),--ServerApp.port=$(JUPYTER_PORT) --ServerApp.port_retries=0,) \
             $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab test test-unit test-notebooks test-browser execute execute-all bench lint interview cards clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m dlhelpers.data
	@rm -f $(VENV)/.installed-*
	@touch $@

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(LAB_FLAGS) $(LAB_ARGS)

test: $(STAMP)
	$(RUN_ENV) HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(NBVAL_FLAGS) tests notebooks

test-unit: $(STAMP)
	$(RUN_ENV) $(BIN)/python -m pytest -n $(JOBS) tests

test-notebooks: $(STAMP)
	$(RUN_ENV) $(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(NBVAL_FLAGS) notebooks

test-browser: $(STAMP)
	$(BIN)/python tools/browser_test.py

execute: $(STAMP)
	@test -n "$(NB)" || (echo "usage: make execute NB=path/to/notebook.ipynb" && exit 2)
	$(RUN_ENV) $(BIN)/python tools/execute_notebooks.py $(NB)

execute-all: $(STAMP)
	$(RUN_ENV) $(BIN)/python tools/execute_notebooks.py notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check dlhelpers tests benchmarks tools notebooks

interview: $(STAMP)
	@mkdir -p build
	$(BIN)/python tools/interview_sheet.py > build/INTERVIEW.md
	@echo "wrote build/INTERVIEW.md"

cards: $(STAMP)
	$(BIN)/python tools/anki_cards.py build/interview.apkg

clean:
	rm -rf $(VENV) data/cache
