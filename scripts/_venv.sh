# Shared by scripts/test and scripts/demo: create (once) and update the virtualenv for one
# Airflow release, with this provider installed in editable mode.
#   AIRFLOW_VERSION  Airflow release to install (default 3.3.2)
#   PYTHON           interpreter used to create the virtualenv (default python3)
AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
VENV="${VENV:-.venv/airflow-${AIRFLOW_VERSION}}"

ensure_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating $VENV"
        "${PYTHON:-python3}" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
    fi
    echo "==> installing apache-airflow==$AIRFLOW_VERSION and this provider$extras into $VENV"
    "$VENV/bin/python" -m pip install --quiet "apache-airflow==$AIRFLOW_VERSION" -e ".$extras" 2>&1 \
        | grep -v "^WARNING: Location 'file:" || true
    "$VENV/bin/python" -c "import airflow_provider_braze" # fail here, clearly, if the install did not work
}
