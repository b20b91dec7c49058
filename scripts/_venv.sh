# Shared by scripts/test and scripts/showcase: make .venv from the default python3 and install
# this checkout into it. $1 is the pip extras spec, e.g. "" or "[dev,all]".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.installed${1:-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${1:-}"
    touch "$stamp"
fi
