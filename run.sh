#!/usr/bin/env bash
# One entry point for a fresh clone:
#   ./run.sh lab    set everything up, start Neo4j, load the demo cloud, open JupyterLab
#   ./run.sh test   set everything up and run the whole test suite (notebooks included)
# Set-up: Java 17+ and Maven (installed with apt-get when missing and we are root;
# for tests also Debian's chromium, postgresql and mariadb-server),
# a Python >= 3.11 virtual environment in .venv with the workbench and its test
# dependencies, and the Neo4j jars from Maven Central (java/target/lib, built once).
set -euo pipefail
cd "$(dirname "$0")"
action="${1:-}"
case "$action" in lab|test) ;; *) echo "usage: ./run.sh lab|test" >&2; exit 2 ;; esac

say() { printf '\n==> %s\n' "$*" >&2; }

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
python_ok() { "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }
PYTHON="${PYTHON:-python3}"
python_ok "$PYTHON" || need_apt+=(python3 python3-venv)
if [ "$action" = test ] && ! command -v chromium >/dev/null 2>&1; then need_apt+=(chromium); fi
# Placement on PostgreSQL, as in production (tests/test_postgres.py, workbench bench --postgres).
if [ "$action" = test ] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
# Placement on MariaDB, its most common backend (tests/test_mariadb.py, workbench bench --mariadb).
if [ "$action" = test ] && ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  need_apt+=(mariadb-server)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${need_apt[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "missing: ${need_apt[*]} (install them, e.g. with apt-get or conda env create -f environment.yml)" >&2
    exit 1
  fi
fi
python_ok "$PYTHON" || { echo "Python >= 3.11 with the venv module is required" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
say "installing the workbench and its dependencies into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

say "building the Neo4j launcher (first run downloads the jars from Maven Central)"
.venv/bin/python -c 'from workbench.graphdb.server import LocalNeo4j; LocalNeo4j.from_env().build()'

if [ "$action" = lab ]; then
  exec .venv/bin/workbench lab
fi

say "running the test suite (tests/ and notebooks/)"
set +e
.venv/bin/python -m pytest --durations=25
status=$?
set -e
if [ "$status" = 5 ]; then echo "pytest collected no tests: that is a failure" >&2; exit 1; fi
exit "$status"
