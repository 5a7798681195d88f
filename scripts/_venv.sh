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

ensure_venv() {
    local extras="$1"
    local log="$VENV.install.log"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating $VENV"
        mkdir -p "$(dirname "$VENV")"
        "${PYTHON:-python3}" -m venv "$VENV" \
            || fail "could not create a virtualenv with ${PYTHON:-python3}; install Python 3.10+ with venv, or set PYTHON."
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >"$log" 2>&1 \
            || fail "could not upgrade pip in $VENV (see $log); check your network or package index settings."
    fi
    echo "==> installing apache-airflow==$AIRFLOW_VERSION and this provider$extras into $VENV"
    if ! "$VENV/bin/python" -m pip install --quiet "apache-airflow==$AIRFLOW_VERSION" -e ".$extras" >"$log" 2>&1; then
        local reason
        reason="$(grep -E '^ERROR' "$log" | grep -v 'yanked versions' | tail -n 1 | cut -c1-200)"
        fail "could not install apache-airflow==$AIRFLOW_VERSION and this provider into $VENV${reason:+ ($reason)}; see $log. Check AIRFLOW_VERSION (3.3.0 or later) and your network."
    fi
    # From outside the repository, where the source tree is not importable without the install.
    local python="$VENV/bin/python"
    case "$python" in /*) ;; *) python="$PWD/$python" ;; esac
    (cd / && "$python" -c "import airflow, airflow_provider_braze") >>"$log" 2>&1 \
        || fail "the install into $VENV did not work: airflow or airflow_provider_braze cannot be imported (see $log). Delete $VENV and rerun."
}
