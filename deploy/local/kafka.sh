#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x broker (KRaft, broker+controller) for development and CI,
# without Docker. State lives under <repo>/.cache/kafka/ (or $CRM_LOCAL_STATE_DIR/kafka/: a second
# broker of one's own, e.g. for fault tests that restart it; the jars stay in <repo>/.cache/kafka).
#
#   deploy/local/kafka.sh up         resolve jars once, format a fresh data dir if there is none,
#                                    start if not running, wait until ready; the bootstrap
#                                    address 127.0.0.1:<port> is the LAST line of stdout
#   deploy/local/kafka.sh restart    stop (SIGTERM, SIGKILL after 15 s) and start again on the
#                                    SAME data dir and ports; prints the bootstrap address
#   deploy/local/kafka.sh down       stop the broker and delete its data (jars stay cached); the
#                                    ports are kept, so the next `up` listens where clients look
#   deploy/local/kafka.sh status     exit 0 and print "running ..." or exit 1
#   deploy/local/kafka.sh bootstrap  print the bootstrap address; exit 1 if not running
#
# With CRM_KAFKA_BOOTSTRAP set, nothing is managed: up/status check that it answers (admin
# list_topics), bootstrap prints it, down/restart do nothing.
# Progress goes to stderr; only results go to stdout. Broker log: .cache/kafka/logs/server.log
# (the previous run's is kept as server.log.prev).
# Environment knobs: CRM_KAFKA_READY_TIMEOUT (s, default 180), CRM_PYTHON (a python with
# kafka-python; default: the repo's .venv, then python3, then `uv run`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))"
state="${CRM_LOCAL_STATE_DIR:-$repo/.cache}/kafka"
libs="$repo/.cache/kafka/libs"
marker="$libs/.complete"
data="$state/data"
logs="$state/logs"
props="$state/server.properties"
portsfile="$state/ports"
pidfile="$state/pid"
pom="$here/kafka/pom.xml"
log4j="$here/kafka/log4j2.properties"
ready_timeout="${CRM_KAFKA_READY_TIMEOUT:-180}"
java_opts=(-Xms256m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$log4j" "-Dkafka.logs.dir=$logs")

log() { echo "kafka.sh: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# ---------------------------------------------------------------- tools
ensure_java() {
    command -v java >/dev/null 2>&1 && return 0
    [[ "$(id -u)" -eq 0 ]] || die "java not found: install OpenJDK 17"
    log "installing openjdk-17-jre-headless with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq openjdk-17-jre-headless >&2
}

ensure_mvn() {
    command -v mvn >/dev/null 2>&1 && return 0
    [[ "$(id -u)" -eq 0 ]] || die "mvn not found: install Maven"
    log "installing maven with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq maven >&2
}

# A python that can import kafka-python, in the global array `py`.
find_python() {
    local p
    if [[ -n "${CRM_PYTHON:-}" ]]; then
        py=("$CRM_PYTHON")
        return 0
    fi
    for p in "$repo/.venv/bin/python" "$(command -v python3 || true)"; do
        if [[ -n "$p" && -x "$p" ]] && (cd / && "$p" -c 'import kafka.admin') >/dev/null 2>&1; then
            py=("$p")
            return 0
        fi
    done
    if command -v uv >/dev/null 2>&1; then
        py=(uv run --quiet --frozen --project "$repo" python)
        return 0
    fi
    die "no python with kafka-python found (set CRM_PYTHON, or run uv sync)"
}

ready() { # ready BOOTSTRAP TIMEOUT_S
    find_python
    "${py[@]}" "$here/kafka_ready.py" "$1" --timeout "$2"
}

# Resolve the broker's jars into .cache/kafka/libs once; the marker holds the POM's hash, so a
# second run (or a changed POM) is decided without invoking Maven at all.
ensure_libs() {
    local want
    want="$(sha256sum "$pom" | cut -d' ' -f1)"
    if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
        return 0
    fi
    ensure_mvn
    log "resolving Kafka jars with Maven into $libs (first run only)"
    # Beside the cache it fills (shared by every state directory), so the final mv is a rename.
    local work="$libs.mvn" tmp="$libs.tmp"
    rm -rf "$work" "$tmp"
    mkdir -p "$work" "$tmp"
    cp "$pom" "$work/pom.xml" # anything Maven writes (target/) stays under .cache
    if ! (cd "$work" && mvn -B -q -f "$work/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >&2); then
        rm -rf "$tmp"
        die "mvn dependency:copy-dependencies failed"
    fi
    ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven did not deliver kafka_2.13"
    rm -rf "$libs"
    mv "$tmp" "$libs"
    echo "$want" >"$marker"
    log "cached $(find "$libs" -name '*.jar' | wc -l) jars"
}

# ---------------------------------------------------------------- ports and config
pick_ports() {
    python3 -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0))
b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])'
}

# Probes the way the JVM binds a listener (SO_REUSEADDR): connections of a stopped broker that
# linger in TIME_WAIT do not make its port taken; only a listener does.
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

# Both recorded ports, once free: a broker of ours that is still going away gets a few seconds.
wait_for_ports() {
    local i
    for ((i = 0; i < 50; i++)); do
        port_is_free "$1" && port_is_free "$2" && return 0
        sleep 0.2
    done
    return 1
}

read_ports() { # sets port, cport
    [[ -s "$portsfile" ]] || return 1
    read -r port cport <"$portsfile"
    [[ -n "${port:-}" && -n "${cport:-}" ]]
}

write_config() {
    cat >"$props" <<EOF
# Generated by deploy/local/kafka.sh before each start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
num.network.threads=2
num.io.threads=4
EOF
}

format_storage() {
    local cid
    # As Kafka's own Uuid.randomUuid: never one starting with "-", which the tool's argument
    # parser would read as an option (a 1-in-64 failure to start).
    cid="$(python3 -c 'import base64, uuid
cid = "-"
while cid.startswith("-"):
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
print(cid)')"
    log "formatting $data (cluster id $cid)"
    if ! java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format -t "$cid" -c "$props" \
        >"$logs/format.log" 2>&1 </dev/null 9>&-; then
        cat "$logs/format.log" >&2
        rm -rf "$data"
        die "kafka-storage format failed"
    fi
}

# ---------------------------------------------------------------- processes
alive() { # alive PID: exists and is not a zombie
    [[ -n "$1" && -e "/proc/$1" ]] || return 1
    [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != "Z" ]]
}

gone() { # gone PID...: none of them is in the process table any more (not even as a zombie)
    local p
    for p in "$@"; do [[ ! -e "/proc/$p" ]] || return 1; done
}

is_ours() { # is_ours PID: a kafka.Kafka JVM started with our server.properties
    local cmd
    cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline")" || return 1
    [[ "$cmd" == *"kafka.Kafka $props"* ]]
}

# Every live broker process of ours: the recorded pid, plus any JVM running our config.
our_pids() {
    local p f recorded=""
    [[ -s "$pidfile" ]] && recorded="$(cat "$pidfile")"
    {
        [[ -n "$recorded" ]] && echo "$recorded"
        # shellcheck disable=SC2013  # /proc/<pid>/cmdline paths have no spaces
        for f in $(grep -l -F -- "$props" /proc/[0-9]*/cmdline 2>/dev/null); do
            f="${f#/proc/}"
            echo "${f%/cmdline}"
        done
    } | sort -un | while read -r p; do
        if alive "$p" && is_ours "$p"; then echo "$p"; fi
    done
}

is_running() { [[ -n "$(our_pids)" ]]; }

stop_broker() {
    local pids i
    pids="$(our_pids | tr '\n' ' ')"
    if [[ -z "${pids// /}" ]]; then
        rm -f "$pidfile"
        return 0
    fi
    log "stopping broker (pid $pids) with SIGTERM"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 75; i++)); do
        is_running || break
        sleep 0.2
    done
    if is_running; then
        pids="$(our_pids | tr '\n' ' ')"
        log "broker still alive after 15 s: SIGKILL $pids"
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            is_running || break
            sleep 0.2
        done
    fi
    is_running && die "could not stop the broker: $(our_pids | tr '\n' ' ')"
    # A dead broker stays a zombie until init reaps it (about 1 s here); wait for that too, so
    # that nothing of ours is listed once down returns.
    for ((i = 0; i < 50; i++)); do
        # shellcheck disable=SC2086
        gone $pids && break
        sleep 0.2
    done
    rm -f "$pidfile"
    log "broker stopped"
}

fail_start() {
    log "$1"
    for f in "$logs/server.log" "$logs/stdout.log"; do
        if [[ -s "$f" ]]; then
            echo "----- $f (last 200 lines) -----" >&2
            tail -n 200 "$f" >&2 || true
        fi
    done
    echo "-----" >&2
    stop_broker || true
    exit 1
}

start_broker() {
    local pid t0=$SECONDS deadline
    write_config
    log "starting Kafka on 127.0.0.1:$port (controller $cport), log: $logs/server.log"
    # Detached: its own session, stdio on files (never a caller's pipe), not holding our lock.
    setsid nohup java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$props" \
        >"$logs/stdout.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$pidfile"
    deadline=$((t0 + ready_timeout))
    while ((SECONDS < deadline)); do
        if ! alive "$pid"; then
            # (setsid execs in place here, so $! is the JVM; should it ever have forked, adopt
            # the JVM that runs our config instead.)
            pid="$(our_pids | head -n1)"
            [[ -n "$pid" ]] || fail_start "broker exited during start-up"
            echo "$pid" >"$pidfile"
        fi
        if grep -q 'Kafka Server started' "$logs/server.log" 2>/dev/null; then
            if ready "127.0.0.1:$port" "$((deadline - SECONDS > 1 ? deadline - SECONDS : 1))"; then
                log "broker ready after $((SECONDS - t0)) s"
                return 0
            fi
            fail_start "the broker logged 'Kafka Server started' but an admin client cannot list topics"
        fi
        sleep 0.5
    done
    fail_start "broker not ready within $ready_timeout s"
}

rotate_log() {
    mkdir -p "$logs"
    if [[ -f "$logs/server.log" ]]; then mv -f "$logs/server.log" "$logs/server.log.prev"; fi
}

lock() {
    mkdir -p "$state"
    exec 9>"$state/.lock"
    flock -w 600 9 || die "another kafka.sh holds $state/.lock"
}

# ---------------------------------------------------------------- commands
cmd_up() {
    if [[ -n "${CRM_KAFKA_BOOTSTRAP:-}" ]]; then
        ready "$CRM_KAFKA_BOOTSTRAP" 30 || die "CRM_KAFKA_BOOTSTRAP does not answer"
        echo "$CRM_KAFKA_BOOTSTRAP"
        return 0
    fi
    lock
    if is_running && read_ports; then
        ready "127.0.0.1:$port" 60 || die "broker process is running but does not answer"
        echo "127.0.0.1:$port"
        return 0
    fi
    stop_broker # a half-dead leftover without a ports file
    ensure_java
    ensure_libs
    rotate_log
    # The recorded ports are kept across down/up (clients hold the bootstrap address); they
    # move only when something else listens there, and the data (formatted for them) goes too.
    if read_ports && ! wait_for_ports "$port" "$cport"; then
        log "ports $port/$cport are taken by something else: moving, with fresh data"
        rm -rf "$data" "$portsfile"
    fi
    if ! read_ports; then
        rm -rf "$data"
        pick_ports >"$portsfile"
        read_ports
    fi
    if [[ ! -f "$data/meta.properties" ]]; then
        rm -rf "$data"
        write_config
        format_storage
    fi
    start_broker
    echo "127.0.0.1:$port"
}

cmd_restart() {
    if [[ -n "${CRM_KAFKA_BOOTSTRAP:-}" ]]; then
        log "CRM_KAFKA_BOOTSTRAP is set: not restarting an external broker"
        echo "$CRM_KAFKA_BOOTSTRAP"
        return 0
    fi
    if ! [[ -f "$data/meta.properties" ]] || ! read_ports; then
        log "no broker data yet: doing a fresh up"
        cmd_up
        return 0
    fi
    lock
    stop_broker
    ensure_java
    ensure_libs
    rotate_log
    start_broker
    echo "127.0.0.1:$port"
}

cmd_down() {
    if [[ -n "${CRM_KAFKA_BOOTSTRAP:-}" ]]; then
        log "CRM_KAFKA_BOOTSTRAP is set: nothing to stop"
        return 0
    fi
    lock
    stop_broker
    rm -rf "$data"
    log "data removed (jars stay cached in $libs; ports kept in $portsfile)"
}

cmd_status() {
    if [[ -n "${CRM_KAFKA_BOOTSTRAP:-}" ]]; then
        if ready "$CRM_KAFKA_BOOTSTRAP" 10; then
            echo "running (external: CRM_KAFKA_BOOTSTRAP=$CRM_KAFKA_BOOTSTRAP)"
            return 0
        fi
        echo "not answering (external: CRM_KAFKA_BOOTSTRAP=$CRM_KAFKA_BOOTSTRAP)"
        return 1
    fi
    if is_running && read_ports && ready "127.0.0.1:$port" 10 2>/dev/null; then
        echo "running: 127.0.0.1:$port (pid $(our_pids | head -n1), data: $data)"
        return 0
    fi
    echo "not running"
    return 1
}

cmd_bootstrap() {
    if [[ -n "${CRM_KAFKA_BOOTSTRAP:-}" ]]; then
        echo "$CRM_KAFKA_BOOTSTRAP"
        return 0
    fi
    if is_running && read_ports; then
        echo "127.0.0.1:$port"
        return 0
    fi
    die "not running"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
restart) cmd_restart ;;
status) cmd_status ;;
bootstrap) cmd_bootstrap ;;
*)
    echo "usage: $0 {up|down|restart|status|bootstrap}" >&2
    exit 2
    ;;
esac
