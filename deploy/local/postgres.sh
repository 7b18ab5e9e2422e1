#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for development and CI, under <repo>/.cache/postgres/
# (or $CRM_LOCAL_STATE_DIR/postgres/: a second cluster of one's own, e.g. for fault tests that
# stop and start it without disturbing anyone using the first).
#
#   deploy/local/postgres.sh up      init if needed, start if not running, wait until it accepts
#                                    connections; the DSN is the LAST line of stdout
#   deploy/local/postgres.sh down    stop (fast); no server process of ours is left
#   deploy/local/postgres.sh status  exit 0 and print "running ..." or exit 1
#   deploy/local/postgres.sh dsn     print the DSN; exit 1 if not running
#
# DSN: postgresql://crm:crm@127.0.0.1:<port>/crm (trust auth, listens on 127.0.0.1 only).
# With CRM_POSTGRES_DSN set, nothing is managed: up/status check that it answers, dsn prints
# it, down does nothing. Progress goes to stderr; only results go to stdout.
# PostgreSQL refuses to run as root: as root the server runs as the system user `crmpg`
# (created if missing). The port is chosen once and kept in .cache/postgres/port: a restart
# (down, up) comes back on the same port, so clients holding the DSN reconnect by themselves.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))"
state="${CRM_LOCAL_STATE_DIR:-$repo/.cache}/postgres"
data="$state/data"
sockdir="$state/run"
logfile="$state/server.log"
portfile="$state/port"
pg_user="crmpg"

log() { echo "postgres.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# Never let a caller's PG* variables redirect our own psql calls.
unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGSSLMODE || true

find_pgbin() {
    local d=/usr/lib/postgresql/15/bin
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
        echo "$d"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

psql_bin() {
    if [[ -n "${pgbin:-}" && -x "$pgbin/psql" ]]; then
        echo "$pgbin/psql"
    elif command -v psql >/dev/null 2>&1; then
        command -v psql
    else
        return 1
    fi
}

ensure_pgbin() {
    if pgbin="$(find_pgbin)"; then
        return 0
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        die "initdb/pg_ctl not found (looked in /usr/lib/postgresql/15/bin and PATH); install postgresql-15"
    fi
    log "installing postgresql-15 with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql-15 >&2
    pgbin="$(find_pgbin)" || die "postgresql-15 installed but initdb/pg_ctl still not found"
}

# Run a command as the user that owns the cluster (never root), from a directory it can read.
as_owner() {
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd "$state" && runuser -u "$pg_user" -- "$@")
    else
        (cd "$state" && "$@")
    fi
}

ensure_owner_user() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    if ! id -u "$pg_user" >/dev/null 2>&1; then
        log "creating system user $pg_user (PostgreSQL does not run as root)"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            --user-group "$pg_user"
    fi
    # The server user must be able to traverse every ancestor of .cache/postgres (the repo may
    # live under /root, mode 700). Grant only search (x) and only where it is missing: an ACL
    # entry for that user when setfacl exists, else o+x.
    local d="$state" dirs=()
    while [[ "$d" != "/" ]]; do
        dirs=("$d" "${dirs[@]}")
        d="$(dirname "$d")"
    done
    for d in "${dirs[@]}"; do
        if ! runuser -u "$pg_user" -- test -x "$d" 2>/dev/null; then
            if command -v setfacl >/dev/null 2>&1 && setfacl -m "u:$pg_user:x" "$d" 2>/dev/null; then
                log "granted $pg_user search permission on $d (ACL)"
            else
                chmod o+x "$d"
                log "chmod o+x $d so that $pg_user can reach the data directory"
            fi
        fi
    done
}

free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Probes the way the server binds (SO_REUSEADDR): connections of a stopped server that linger
# in TIME_WAIT do not make its port taken; only a listener does.
port_is_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# The recorded port, once free: a server of ours that is still going away gets a few seconds.
wait_for_port() {
    local i
    for ((i = 0; i < 50; i++)); do
        port_is_free "$1" && return 0
        sleep 0.2
    done
    return 1
}

# Serialise up/down of this cluster (e.g. parallel test workers); servers never inherit fd 9.
lock() {
    mkdir -p "$state"
    exec 9>"$state/.lock"
    flock -w 300 9 || die "another postgres.sh holds $state/.lock"
}

dsn_for() { echo "postgresql://crm:crm@127.0.0.1:$1/crm"; }

is_running() {
    [[ -f "$data/PG_VERSION" ]] || return 1
    as_owner "$pgbin/pg_ctl" status -D "$data" >/dev/null 2>&1
}

answers() {
    local psql
    psql="$(psql_bin)" || die "psql not found"
    "$psql" "$1" -X -q -t -A -c 'select 1' >/dev/null 2>&1
}

print_log_and_die() {
    log "$1"
    if [[ -f "$logfile" ]]; then
        echo "----- $logfile (last 200 lines) -----" >&2
        tail -n 200 "$logfile" >&2 || true
        echo "-----" >&2
    fi
    exit 1
}

# Settings are rewritten before every start: the port may have to move, the rest is fixed.
write_conf() {
    local port="$1" sock="$2"
    cat >"$data/crm_local.conf" <<EOF
# Written by deploy/local/postgres.sh before each start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
checkpoint_timeout = 30min
max_wal_size = 1GB
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
    if [[ "$(id -u)" -eq 0 ]]; then chown "$pg_user:" "$data/crm_local.conf"; fi
}

init_cluster() {
    log "initialising a new cluster in $data"
    rm -rf "$data"
    mkdir -p "$data"
    chmod 700 "$data"
    local pwfile="$state/.pwfile"
    echo "crm" >"$pwfile"
    if [[ "$(id -u)" -eq 0 ]]; then chown "$pg_user:" "$data" "$pwfile"; fi
    if ! as_owner "$pgbin/initdb" -D "$data" -U crm --pwfile="$pwfile" --auth=trust \
        -E UTF8 --locale=C >"$state/initdb.log" 2>&1; then
        rm -f "$pwfile"
        cat "$state/initdb.log" >&2
        die "initdb failed"
    fi
    rm -f "$pwfile"
    echo "include_if_exists = 'crm_local.conf'" >>"$data/postgresql.conf"
    free_port >"$portfile"
}

cmd_up() {
    if [[ -n "${CRM_POSTGRES_DSN:-}" ]]; then
        answers "$CRM_POSTGRES_DSN" || die "CRM_POSTGRES_DSN does not answer: select 1 failed"
        echo "$CRM_POSTGRES_DSN"
        return 0
    fi
    ensure_pgbin
    lock
    ensure_owner_user
    if [[ ! -f "$data/PG_VERSION" ]]; then
        init_cluster
    fi
    [[ -s "$portfile" ]] || free_port >"$portfile"
    local port
    port="$(cat "$portfile")"
    if ! is_running; then
        if ! wait_for_port "$port"; then
            local old="$port"
            port="$(free_port)"
            echo "$port" >"$portfile"
            log "port $old is taken by something else; moving to $port"
        fi
        # Unix socket paths are limited to 107 bytes; fall back to /tmp for deep checkouts.
        local sock="$sockdir"
        if ((${#sock} + 20 > 100)); then
            sock="/tmp/crm-pg-$(echo -n "$state" | sha1sum | cut -c1-12)"
        fi
        mkdir -p "$sock"
        chmod 700 "$sock"
        touch "$logfile"
        if [[ "$(id -u)" -eq 0 ]]; then chown "$pg_user:" "$sock" "$logfile"; fi
        write_conf "$port" "$sock"
        log "starting PostgreSQL on 127.0.0.1:$port (log: $logfile)"
        # shellcheck disable=SC2094  # pg_ctl's own complaints go to the server log too
        if ! as_owner "$pgbin/pg_ctl" start -D "$data" -l "$logfile" -w -t 60 \
            >/dev/null 2>>"$logfile" 9>&-; then
            as_owner "$pgbin/pg_ctl" stop -D "$data" -m immediate >/dev/null 2>&1 || true
            print_log_and_die "PostgreSQL did not start"
        fi
    fi
    local psql admin_dsn i
    psql="$(psql_bin)" || die "psql not found"
    admin_dsn="postgresql://crm:crm@127.0.0.1:$port/postgres"
    for ((i = 0; i < 60; i++)); do
        if "$psql" "$admin_dsn" -X -q -t -A -c 'select 1' >/dev/null 2>&1; then
            break
        fi
        sleep 1
    done
    ((i < 60)) || print_log_and_die "PostgreSQL is running but does not accept connections"
    if [[ "$("$psql" "$admin_dsn" -X -q -t -A -c "select 1 from pg_database where datname = 'crm'")" != "1" ]]; then
        log "creating database crm"
        "$psql" "$admin_dsn" -X -q -v ON_ERROR_STOP=1 -c 'create database crm' >/dev/null \
            || print_log_and_die "create database crm failed"
    fi
    answers "$(dsn_for "$port")" || print_log_and_die "database crm does not answer"
    dsn_for "$port"
}

cmd_down() {
    if [[ -n "${CRM_POSTGRES_DSN:-}" ]]; then
        log "CRM_POSTGRES_DSN is set: nothing to stop"
        return 0
    fi
    [[ -f "$data/PG_VERSION" ]] || {
        log "no cluster in $data"
        return 0
    }
    ensure_pgbin
    lock
    local pid=""
    if [[ -f "$data/postmaster.pid" ]]; then pid="$(head -n1 "$data/postmaster.pid")"; fi
    if is_running; then
        log "stopping PostgreSQL"
        as_owner "$pgbin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null 2>&1 \
            || as_owner "$pgbin/pg_ctl" stop -D "$data" -m immediate -w -t 30 >/dev/null 2>&1 || true
    fi
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
        && [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *"$data"* ]]; then
        log "postmaster $pid still alive: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # Wait until the postmaster has left the process table: a dead server stays a zombie until
    # init reaps it (about 1 s here), and nothing of ours should be listed once down returns.
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -n "$pid" && -e "/proc/$pid" ]] || break
        sleep 0.2
    done
    log "stopped"
}

cmd_status() {
    if [[ -n "${CRM_POSTGRES_DSN:-}" ]]; then
        if answers "$CRM_POSTGRES_DSN"; then
            echo "running (external: CRM_POSTGRES_DSN)"
            return 0
        fi
        echo "not answering (external: CRM_POSTGRES_DSN)"
        return 1
    fi
    pgbin="$(find_pgbin)" || {
        echo "not running (PostgreSQL not installed)"
        return 1
    }
    if is_running && [[ -s "$portfile" ]] && answers "$(dsn_for "$(cat "$portfile")")"; then
        echo "running: $(dsn_for "$(cat "$portfile")") (data: $data)"
        return 0
    fi
    echo "not running"
    return 1
}

cmd_dsn() {
    if [[ -n "${CRM_POSTGRES_DSN:-}" ]]; then
        echo "$CRM_POSTGRES_DSN"
        return 0
    fi
    pgbin="$(find_pgbin)" || die "not running"
    if is_running && [[ -s "$portfile" ]]; then
        dsn_for "$(cat "$portfile")"
        return 0
    fi
    die "not running"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
dsn) cmd_dsn ;;
*)
    echo "usage: $0 {up|down|status|dsn}" >&2
    exit 2
    ;;
esac
