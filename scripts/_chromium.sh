# Sourced by scripts/test: finds Chromium for the admin page's browser tests, and
# installs Debian's package when it is missing and this is root on Debian or Ubuntu
# (Playwright's own browser download is not used). EVENTLEDGER_CHROMIUM chooses one.
if [ -z "${EVENTLEDGER_CHROMIUM:-}" ]; then
    if ! command -v chromium >/dev/null 2>&1; then
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing Chromium for the browser tests (apt-get install chromium)"
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "the browser tests need Chromium: install it (apt-get install chromium)" \
                "or set EVENTLEDGER_CHROMIUM to its path" >&2
            exit 1
        fi
    fi
    EVENTLEDGER_CHROMIUM="$(command -v chromium)"
fi
export EVENTLEDGER_CHROMIUM
