# shellcheck shell=bash
# Sourced by .ci/run: the suite (but tests/faults, tests/e2e, tests/sandbox and the real-worker
# tests) again on the oldest and the newest Python that pyproject.toml supports (3.10 and
# 3.13), each in its own virtual environment and its own PostgreSQL database, side by side
# (the machine has two cores). An interpreter is found as python3.X on PATH or in pyenv's
# versions; a version the machine lacks is named as skipped, never silently passed.
#
# Two halves, so that the installs overlap the main job: connector_install_other_versions
# starts each version's venv and install in the background (pip waits on the network and the
# disk more than on a core), connector_other_versions waits for them and runs the suites once
# the main suite is done (two suites beside the main one would slow it, and its worker tests
# measure real time).

_connector_find_python() {
    local version="$1" candidate
    candidate="$(command -v "python$version" 2>/dev/null || true)"
    if [ -n "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
        echo "$candidate"; return
    fi
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version"; do
        if [ -x "$candidate" ]; then echo "$candidate"; return; fi
    done
}

_CONNECTOR_VERSIONS=(3.10 3.13)
_CONNECTOR_INSTALLS=()

_connector_install_on() {
    local version="$1" python="$2" log="$3"
    {
        "$python" -m venv ".venv-$version"
        ".venv-$version/bin/python" -m pip install --quiet --upgrade pip
        ".venv-$version/bin/python" -m pip install --quiet -e '.[test,postgres,sqs]'
    } >"$log" 2>&1
}

_connector_suite_on() {
    local version="$1" env="$2" log="$3"
    # Run on the main Python only: the fault-injection suite (tests/faults), the end-to-end
    # sandbox flows (tests/e2e), the simulator's own tests (tests/sandbox) and the
    # real-worker tests (test_worker, test_worker_stop, test_notify: subprocesses on
    # PostgreSQL). They exercise the engine's behaviour over many HTTP exchanges, not the
    # interpreter; every module's unit tests still run here; CI must stay under 10 min.
    CONNECTOR_TEST_POSTGRES="$env" ".venv-$version/bin/python" -m pytest -p no:cacheprovider \
        --ignore=tests/faults --ignore=tests/e2e --ignore=tests/sandbox \
        --ignore=tests/test_worker_stop.py --ignore=tests/test_worker.py \
        --ignore=tests/test_notify.py >>"$log" 2>&1
}

connector_install_other_versions() {
    local version python
    for version in "${_CONNECTOR_VERSIONS[@]}"; do
        python="$(_connector_find_python "$version")"
        if [ -z "$python" ]; then
            _CONNECTOR_INSTALLS+=("$version:")
            continue
        fi
        _connector_install_on "$version" "$python" "/tmp/connector-ci-$version.log" &
        _CONNECTOR_INSTALLS+=("$version:$!")
    done
}

connector_other_versions() {
    local entry version install base db pids=() names=() logs=() status=0 i
    base="${CONNECTOR_TEST_POSTGRES%/*}"
    for entry in "${_CONNECTOR_INSTALLS[@]}"; do
        version="${entry%%:*}" install="${entry#*:}"
        if [ -z "$install" ]; then
            echo "== Python $version: not on this machine, skipped"
            continue
        fi
        if ! wait "$install"; then
            echo "== Python $version: install FAILED"; tail -n 60 "/tmp/connector-ci-$version.log"
            status=1; continue
        fi
        db="connector_test_${version/./}"
        # with the main venv's psycopg: createdb may not be on PATH
        python - "$base/postgres" "$db" <<'PY'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (sys.argv[2],)).fetchone():
        conn.execute(f'CREATE DATABASE "{sys.argv[2]}"')
PY
        echo "== tests on Python $version"
        _connector_suite_on "$version" "$base/$db" "/tmp/connector-ci-$version.log" &
        pids+=("$!"); names+=("$version"); logs+=("/tmp/connector-ci-$version.log")
    done
    for i in "${!pids[@]}"; do
        if wait "${pids[$i]}"; then
            echo "== Python ${names[$i]}: $(tail -n 1 "${logs[$i]}")"
        else
            echo "== Python ${names[$i]}: FAILED"; tail -n 60 "${logs[$i]}"; status=1
        fi
    done
    return "$status"
}
