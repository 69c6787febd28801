# One-line targets; the README and CI call these and nothing else.
UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
RUN := $(UV) run --frozen
ENV ?= dev
PREVIEW_DIR ?= reports/previews
# A new stack encrypts its secrets with the environment's Cloud KMS key (the bootstrap made it).
SELECT_STACK = $(RUN) pulumi stack select --create $(ENV) --secrets-provider "$$($(RUN) python -m environments secrets-provider $(ENV))"
# Recipes run in bash with pipefail: a command piped into `tee` still fails the target.
SHELL := bash
.SHELLFLAGS := -o pipefail -c
GIT_SHA ?= $(shell git rev-parse HEAD 2>/dev/null)
# uv on PATH for the pre-commit hooks too, when make installed it privately.
export PATH := $(CURDIR)/.tools/bin:$(PATH)
export UV_COMPILE_BYTECODE := 1
export OMP_NUM_THREADS := 1

.PHONY: demo test lint format train evaluate model serve experiment-demo drift-demo bench bench-rollout bench-hostile preview drift up rollout rollback drill bootstrap preflight pulumi-cli hooks clean

demo: $(UV)  ## train, serve and roll out on this machine
	$(RUN) python -m pipelines demo

experiment-demo: $(UV)  ## a local A/B test over real HTTP: simulated users, a win, then an A/A run with no decision
	$(RUN) python -m pipelines experiment-demo

drift-demo: $(UV)  ## drift through a real service: no drift, covariate drift, concept drift; monitoring reports, a retrain proposed or refused
	$(RUN) python -m pipelines drift-demo

# Two pytest workers: most integration tests wait on processes and bakes, so two share two cores.
test: $(UV)  ## the whole test suite with a coverage floor, on two workers; "no tests ran" (pytest exit 5) fails
	$(RUN) pytest -n 2 --cov --cov-report=term; rc=$$?; [ $$rc -ne 5 ] || echo "error: pytest ran no tests" >&2; exit $$rc

lint: $(UV)  ## every pre-commit hook on every file (ruff, pylint, pyright, hadolint, file checks)
	$(RUN) pre-commit run --all-files --show-diff-on-failure

format: $(UV)  ## apply ruff's formatting and safe fixes
	$(RUN) ruff format . && $(RUN) ruff check --fix .

train: $(UV)  ## train a model and publish it to artifacts/registry
	$(RUN) python -m pipelines train

evaluate: $(UV)  ## every offline model gate on the registry's latest model, against the pinned one (CHAMPION=none: alone); reports/model/verdict.json and model_card.md
	$(RUN) python -m pipelines evaluate $(if $(CHAMPION),--champion "$(CHAMPION)")

model: $(UV)  ## the pinned production model (models/production.json), verified, into ./model for the image build; an experiment's challenger (models/challenger.json) into ./challenger
	$(RUN) python -m pipelines fetch-model
	if [ -f models/challenger.json ]; then $(RUN) python -m pipelines fetch-model --pin-file models/challenger.json --destination challenger; else rm -rf challenger && mkdir challenger; fi

serve: $(UV)  ## serve the latest model on 127.0.0.1:$${PORT:-8000}, training one if none exists
	$(RUN) python -m pipelines serve

bench: $(UV)  ## serving benchmark, pinned, with wrk: service vs pipeline path, naive app, FastAPI hello; the serving targets; reports/bench/serving.md
	$(RUN) python -m benchmarks.serving

bench-hostile: $(UV)  ## what each hostile request costs next to a good batch; reports/bench/hostile.md
	$(RUN) python -m benchmarks.hostile

bench-rollout: $(UV)  ## time to rollback and failed requests per fault, false-rollback rate; reports/bench/rollouts.md
	$(RUN) python -m benchmarks.rollouts

preview: pulumi-cli $(UV)  ## what `pulumi up` would change in ENV (dev, staging, prod), checked by the policy pack; also in reports/previews/ENV.txt
	@mkdir -p $(PREVIEW_DIR)
	$(SELECT_STACK) && $(RUN) pulumi preview --stack $(ENV) --policy-pack infra/policy --diff --non-interactive $(PREVIEW_FLAGS) 2>&1 | tee $(PREVIEW_DIR)/$(ENV).txt

drift: pulumi-cli $(UV)  ## does ENV's cloud still match its stack? a refreshed preview that expects no changes; reports/drift/ENV.txt
	$(MAKE) --no-print-directory preview ENV=$(ENV) PREVIEW_DIR=reports/drift PREVIEW_FLAGS="--refresh --expect-no-changes"

up: pulumi-cli $(UV)  ## apply ENV's stack with the policy pack; RELEASE_* variables ask for a release step
	$(SELECT_STACK) && $(RUN) pulumi up --stack $(ENV) --policy-pack infra/policy --yes

rollout: pulumi-cli $(UV)  ## gated canary (Cloud Run or GKE) in ENV of IMAGE (by digest), built from GIT_SHA with MODEL baked in
	$(RUN) python -m pipelines rollout --environment $(ENV) --image "$(IMAGE)" --git-sha "$(GIT_SHA)" --model "$(MODEL)" $(if $(filter true,$(RELEASE_AGAIN)),--release-again)

drill: pulumi-cli $(UV)  ## rollback drill in ENV (dev): its stable image again, ERROR_RATE of predictions failing; fails unless rolled back in time
	$(RUN) python -m pipelines drill --environment $(ENV) --model "$(or $(MODEL),model)" $(if $(ERROR_RATE),--error-rate "$(ERROR_RATE)")

rollback: pulumi-cli $(UV)  ## roll ENV back to its stable revision now, recording $$REASON
	$(RUN) python -m pipelines rollback --environment $(ENV) --reason "$${REASON:-manual rollback}"

bootstrap: pulumi-cli $(UV)  ## the one-time stack in infra/bootstrap (APIs, state, registry, GitHub trust)
	$(RUN) pulumi stack select --create main --cwd infra/bootstrap && $(RUN) pulumi up --stack main --cwd infra/bootstrap

preflight: $(UV)  ## check GitHub OIDC claims and IAM for ENV's deployer (AS=previewer: its read-only previewer), explaining what is missing
	$(RUN) python -m infra.preflight --environment $(ENV) --as $(or $(AS),deployer)

pulumi-cli:  # the one tool uv cannot install: say where it comes from instead of a bare spawn error
	@command -v pulumi >/dev/null || { echo "error: the Pulumi CLI is not on PATH; install it (https://www.pulumi.com/docs/install/) and re-run" >&2; exit 2; }

hooks: $(UV)  ## run the hooks before every commit
	$(RUN) pre-commit install

clean:  ## remove generated artifacts, reports and the virtual environment
	rm -rf .venv .tools artifacts reports runs .pytest_cache .coverage

# A fresh machine needs only Python and make: uv comes from PyPI into a private venv.
.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install --quiet "uv==$(UV_VERSION)"
