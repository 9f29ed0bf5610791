#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine: system packages, .venv with the pinned Python
# dependencies, and the pinned JVM jars. Quiet and fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }

# --- Debian packages -------------------------------------------------------------------------
need=()
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ]; then need+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null || need+=(maven)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || need+=(mosquitto)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
# With --test (scripts/test): `docker-compose config` validates deploy/docker-compose.yml without a
# Docker engine, and promtool (from the prometheus package) checks the generated Prometheus files.
if [ "${1:-}" = "--test" ]; then
  command -v docker-compose >/dev/null || need+=(docker-compose)
  command -v promtool >/dev/null || need+=(prometheus)
fi
if [ "${#need[@]}" -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages start system-wide services on 1883, 5432 and 9090 where systemd runs; sensorpipe runs its
  # own instances under .sensorpipe/, so stop the ones we just installed rather than fight over ports.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for unit in mosquitto postgresql prometheus; do
      if printf '%s\n' "${need[@]}" | grep -qx "$unit" && systemctl is-active --quiet "$unit"; then
        say "stopping and disabling the system $unit service (sensorpipe runs its own)"
        $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
      fi
    done
  fi
fi

# --- TimescaleDB (with --test) -------------------------------------------------------------------
# TimescaleDB has no Debian 12 package: ../shared/timescaledb, beside the checkout, holds a build for the
# Debian PostgreSQL 15 packages (15.20 or newer). Its files go beside the server, which `sensorpipe stack up`
# then preloads; the suite's TimescaleDB tests fail without them.
if [ "${1:-}" = "--test" ]; then
  tsdb=../shared/timescaledb
  pg_config=/usr/lib/postgresql/15/bin/pg_config
  if [ ! -d "$tsdb/pg15" ] || [ ! -x "$pg_config" ]; then
    if ! compgen -G "/usr/lib/postgresql/*/lib/timescaledb.so" >/dev/null; then
      say "TimescaleDB is not installed and there is no $tsdb build for PostgreSQL 15 here: its tests will fail"
    fi
  else
    lib=$("$pg_config" --pkglibdir); ext="$("$pg_config" --sharedir)/extension"
    current=yes
    for file in "$tsdb"/pg15/lib/*.so; do cmp -s "$file" "$lib/$(basename "$file")" || current=no; done
    for file in "$tsdb"/pg15/extension/*; do cmp -s "$file" "$ext/$(basename "$file")" || current=no; done
    if [ "$current" = no ]; then
      minor=$(/usr/lib/postgresql/15/bin/postgres --version | sed -E 's/.* 15\.([0-9]+).*/\1/')
      if [ "$minor" -lt 20 ]; then
        say "upgrading postgresql-15 (15.$minor): the TimescaleDB build needs 15.20 or newer"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends --only-upgrade \
          postgresql-15 >/dev/null
      fi
      say "installing TimescaleDB from $tsdb beside PostgreSQL 15"
      $SUDO bash "$tsdb/install.sh" >/dev/null
    fi
  fi
fi

# --- Python ----------------------------------------------------------------------------------
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "sensorpipe needs Python 3.11 or newer (found $(python3 --version))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.sensorpipe-installed
fingerprint="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$fingerprint" ]; then
  say "installing sensorpipe and its pinned dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  # No byte-compiling of ~1 GB of site-packages up front: Python compiles what it imports, on first import.
  .venv/bin/python -m pip install -q --no-compile -e '.[dev]'
  echo "$fingerprint" > "$stamp"
fi

# --- JVM jars (Maven, into ~/.cache/sensorpipe/jars) -------------------------------------------
.venv/bin/sensorpipe jars fetch >/dev/null || .venv/bin/sensorpipe jars fetch
