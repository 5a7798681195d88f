# Shared by scripts/test and scripts/demo: create (once) and update the virtualenv for one
# Airflow release, .venv/airflow-<version> (both scripts use the same one), with this provider
# installed in editable mode. On any failure it prints one line saying what failed and what to
# do, and exits; nothing after it runs.
#   AIRFLOW_VERSION  Airflow release to install (default 3.3.2)
#   PYTHON           interpreter used to create the virtualenv (default python3)
AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
VENV="${VENV:-.venv/airflow-${AIRFLOW_VERSION}}"
SCRIPT_NAME="scripts/$(basename "$0")"

# One clear line, then stop.
fail() {
    echo "$SCRIPT_NAME: $*" >&2
    exit 1
}

# Python 3.10 or later?
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

ensure_venv() {
    local extras="$1"
    local log="$VENV.install.log"
    local python="${PYTHON:-python3}"
    if [ -x "$VENV/bin/python" ] && ! python_ok "$VENV/bin/python"; then
        fail "$VENV was made with Python older than 3.10; delete it (rm -rf $VENV) and rerun, with PYTHON set to Python 3.10+ if python3 is older."
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$python" >/dev/null 2>&1 \
            || fail "$python not found; install Python 3.10+ with venv, or set PYTHON to one."
        python_ok "$python" \
            || fail "$python is not Python 3.10 or later; install one, or set PYTHON to it."
        echo "==> creating $VENV"
        mkdir -p "$(dirname "$VENV")" 2>/dev/null && [ -w "$(dirname "$VENV")" ] \
            || fail "cannot create $(dirname "$VENV"): not a writable folder; set VENV to a writable place."
        if [ -e "$VENV" ] && [ ! -x "$VENV/bin/python" ]; then
            fail "$VENV exists but is not a usable virtualenv (an interrupted run?); delete it (rm -rf $VENV) and rerun."
        fi
        "$python" -m venv "$VENV" \
            || fail "could not create a virtualenv in $VENV with $python (error above); install Python's venv module (e.g. apt-get install python3-venv), or set PYTHON."
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >"$log" 2>&1 \
            || fail "could not upgrade pip in $VENV (see $log); check your network or package index settings."
    fi
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1 \
        || fail "$VENV has no pip (an interrupted run?); delete it (rm -rf $VENV) and rerun."
    echo "==> installing apache-airflow==$AIRFLOW_VERSION and this provider$extras into $VENV"
    if ! "$VENV/bin/python" -m pip install --quiet "apache-airflow==$AIRFLOW_VERSION" -e ".$extras" >"$log" 2>&1; then
        local reason
        reason="$(grep -E '^ERROR' "$log" | grep -v 'yanked versions' | tail -n 1 | cut -c1-200 || true)"
        fail "could not install apache-airflow==$AIRFLOW_VERSION and this provider into $VENV${reason:+ ($reason)}; see $log. Check AIRFLOW_VERSION (3.3.0 or later) and your network."
    fi
    # From outside the repository, where the source tree is not importable without the install.
    local python="$VENV/bin/python"
    case "$python" in /*) ;; *) python="$PWD/$python" ;; esac
    (cd / && "$python" -c "import airflow, airflow_provider_braze") >>"$log" 2>&1 \
        || fail "the install into $VENV did not work: airflow or airflow_provider_braze cannot be imported (see $log). Delete $VENV and rerun."
}
