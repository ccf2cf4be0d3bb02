# Sourced by the scripts: makes (once) and updates the virtual environment.
# EVENTLEDGER_VENV chooses where it lives (default: .venv in the checkout).
VENV="${EVENTLEDGER_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[${EVENTLEDGER_EXTRAS:-dev}]"
PY="$VENV/bin/python"
