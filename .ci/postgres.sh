#!/usr/bin/env bash
# A PostgreSQL server for tg's tests and benchmarks: a dedicated Debian
# cluster `tgtest` on 127.0.0.1:54329 with user `tg`, password `tg` and
# database `tg` (the user may create databases, so tests can make fresh ones).
#
#   .ci/postgres.sh            install if missing, create, start; print the URL
#   .ci/postgres.sh restart    restart the cluster (tests of lost connections)
#   .ci/postgres.sh stop       stop it
#
# Idempotent and safe to run from several processes at once. Needs root
# (it installs packages and runs the server as the `postgres` user). Only the
# URL goes to stdout; progress goes to stderr.
set -euo pipefail

CLUSTER=tgtest
PORT=54329
URL="postgres://tg:tg@127.0.0.1:${PORT}/tg"
ACTION="${1:-start}"

log() { echo "postgres.sh: $*" >&2; }

exec 9>/tmp/tg-ci-postgres.lock
flock 9

if ! command -v pg_createcluster >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
    log "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
VERSION="$(ls /usr/lib/postgresql | sort -n | tail -1)"

# Without systemd nothing makes the socket folder at boot.
install -d -m 2775 -o postgres -g postgres /var/run/postgresql

wait_ready() {
    for _ in $(seq 1 100); do
        if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
            return 0
        fi
        sleep 0.2
    done
    log "the server on 127.0.0.1:${PORT} did not come up; log:"
    tail -n 30 "/var/log/postgresql/postgresql-${VERSION}-${CLUSTER}.log" >&2 || true
    exit 1
}

running() {
    pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c { print $4 }' | grep -q online
}

case "$ACTION" in
    start) ;;
    restart)
        pg_ctlcluster "$VERSION" "$CLUSTER" restart -m fast >&2 9>&-
        wait_ready
        echo "$URL"
        exit 0
        ;;
    stop)
        if running; then pg_ctlcluster "$VERSION" "$CLUSTER" stop -m fast >&2 9>&-; fi
        exit 0
        ;;
    *)
        log "unknown action \`$ACTION\`; expected \`start\`, \`restart\` or \`stop\`"
        exit 2
        ;;
esac

if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c' | grep -q .; then
    log "creating cluster ${VERSION}/${CLUSTER} on port ${PORT}"
    pg_createcluster "$VERSION" "$CLUSTER" -p "$PORT" \
        -- --auth-local=peer --auth-host=scram-sha-256 >&2
fi
# Loopback only; room for many parallel test connections.
CONF_DIR="/etc/postgresql/${VERSION}/${CLUSTER}"
cat > "${CONF_DIR}/conf.d/tg.conf" <<'CONF'
listen_addresses = '127.0.0.1'
max_connections = 300
CONF
# TLS (tests use sslmode=require). pg_createcluster turns it on with Debian's
# snakeoil certificate when there is one; otherwise make a self-signed one.
if ! grep -qE "^[[:space:]]*ssl[[:space:]]*=[[:space:]]*on" "${CONF_DIR}/postgresql.conf"; then
    if [ ! -f "${CONF_DIR}/tg-server.key" ]; then
        log "making a self-signed TLS certificate"
        openssl req -x509 -nodes -newkey rsa:2048 -days 3650 -subj "/CN=127.0.0.1" \
            -keyout "${CONF_DIR}/tg-server.key" -out "${CONF_DIR}/tg-server.crt" >&2 2>/dev/null
        chown postgres:postgres "${CONF_DIR}/tg-server.key" "${CONF_DIR}/tg-server.crt"
        chmod 600 "${CONF_DIR}/tg-server.key"
    fi
    cat >> "${CONF_DIR}/conf.d/tg.conf" <<CONF
ssl = on
ssl_cert_file = '${CONF_DIR}/tg-server.crt'
ssl_key_file = '${CONF_DIR}/tg-server.key'
CONF
fi

if ! running; then
    log "starting cluster ${VERSION}/${CLUSTER}"
    pg_ctlcluster "$VERSION" "$CLUSTER" start >&2 9>&-
fi
wait_ready

psql_admin() {
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$PORT" -d postgres "$@"
}
psql_admin <<'SQL' >&2
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tg') THEN
        CREATE ROLE tg LOGIN CREATEDB PASSWORD 'tg';
    ELSE
        ALTER ROLE tg LOGIN CREATEDB PASSWORD 'tg';
    END IF;
END
$$;
SQL
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'tg'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE tg OWNER tg" >&2
fi

echo "$URL"
