#!/bin/sh
# Install what deploy/local-ha/stack.py needs; safe to run again (it skips what is there).
#
# Why a separate venv from Debian's /usr/bin/python3: as root, Patroni runs as
# the postgres user (PostgreSQL refuses root), and a Python under /root is
# unreadable to that user. The default location is readable by everyone.
set -eu

VENV="${ENTREPOT_HA_PATRONI:-/var/tmp/entrepot-ha/venv}"
PATRONI_VERSION="4.1.5"
PG_BIN="${ENTREPOT_HA_PG_BIN:-/usr/lib/postgresql/15/bin}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=""
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || missing="$missing etcd-server"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing"
    $SUDO apt-get install -y $missing
else
    echo "etcd and haproxy: already installed"
fi

if [ ! -x "$PG_BIN/postgres" ]; then
    echo "note: no PostgreSQL 15 in $PG_BIN (apt-get install postgresql-15, or set ENTREPOT_HA_PG_BIN)"
fi

if [ -x "$VENV/bin/patroni" ] && [ "$("$VENV/bin/patroni" --version 2>/dev/null)" = "patroni $PATRONI_VERSION" ]; then
    echo "patroni $PATRONI_VERSION: already in $VENV"
else
    echo "creating $VENV from /usr/bin/python3 with patroni[etcd3]==$PATRONI_VERSION and psycopg[binary]"
    mkdir -p "$(dirname "$VENV")"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "patroni[etcd3]==$PATRONI_VERSION" "psycopg[binary]"
    chmod -R a+rX "$VENV"
    echo "installed: $("$VENV/bin/patroni" --version)"
fi
echo "ready: python deploy/local-ha/stack.py up"
