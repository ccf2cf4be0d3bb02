# Sourced by the scripts: makes (once) and updates the virtual environment.
# EVENTLEDGER_VENV chooses where it lives (default: .venv in the checkout).
# Versions come from constraints.txt (every dependency of every extra, pinned; see
# scripts/lock), so that CI and every developer run what was tested.
VENV="${EVENTLEDGER_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt -e ".[${EVENTLEDGER_EXTRAS:-dev}]"
PY="$VENV/bin/python"
