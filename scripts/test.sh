#!/bin/bash
# Install everything, then run the unit and integration tests (real LXC, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest -ra tests "$@"
