# Shared by scripts/test and scripts/showcase: make .venv from the default python3 and install
# this checkout into it. $1 is the pip extras spec, e.g. "" or "[dev,all]".
#
# The editable install is in setuptools' compat mode: a .pth path entry for the checkout, which
# mypy (and other static tools) can follow, unlike the default mode's import hook. Edits to the
# checkout, new modules included, show without reinstalling. The stamp names the mode, so a .venv
# installed the old way is reinstalled on the next run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=".venv/.installed-compat${1:-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check \
        --config-settings editable_mode=compat -e ".${1:-}"
    touch "$stamp"
fi
