# The IAM evaluator tests/iam runs (test-time only): @cloud-copilot/iam-simulate, pinned by
# tests/iam/evaluator/package-lock.json and installed with `npm ci` (node >= 20 and npm needed).
EVALUATOR_DIR := tests/iam/evaluator
EVALUATOR_STAMP := $(EVALUATOR_DIR)/node_modules/.installed

.PHONY: evaluator

evaluator: $(EVALUATOR_STAMP)

$(EVALUATOR_STAMP): $(EVALUATOR_DIR)/package.json $(EVALUATOR_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20+ to run tests/iam"; exit 1; }
	cd $(EVALUATOR_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
