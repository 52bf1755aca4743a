#!/usr/bin/env bash
# Install (Debian) and start PostgreSQL on loopback with a `gridgov` role that may create the
# test database. Idempotent: safe on a machine where any of it was already done.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -q && break
  sleep 1
done
pg_isready -h 127.0.0.1
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='gridgov'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE gridgov LOGIN PASSWORD 'gridgov' CREATEDB;\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='gridgov'\"" | grep -q 1 \
  || su postgres -c "createdb -O gridgov gridgov"
