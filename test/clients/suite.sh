# shellcheck shell=bash
# The `clients` suite of scripts/test.sh, which sources this file (it uses
# lib.sh's helpers and test.sh's $WORK, the test copy of the tree).
#
# Each program in test/clients/*/ is a driver's client of the extension: the
# README's snippets (marked `README:NAME` ... `README:end`) plus checks of new
# key, replay, IK001, IK002 (SET LOCAL idempotency.wait = off), 55P03 (SET
# LOCAL lock_timeout), 40001 (REPEATABLE READ), the result decoded to the
# language's map, idem_begin/idem_finish, and 8 concurrent workers retrying
# the same keys (one effect per key; every transaction starts with the
# settings' defaults).  Each runs twice, in a fresh database of its own:
#   direct   to the throwaway server (unix socket; TCP 127.0.0.1 for JDBC)
#   pooler   through PgBouncer in transaction mode (127.0.0.1, a free port),
#            with the driver settings the README recommends
# Then the Django and Express examples (examples/) are served on 127.0.0.1,
# connected directly and through PgBouncer, and hammered with concurrent
# duplicate requests (test/clients/http_hammer.py).  Two controls show that
# PgBouncer really moves transactions between server connections.  Last,
# test/clients/readme.py checks that the README's snippets are the tested ones.

CLIENTS_PACKAGES=(
    python3 python3-psycopg          # psycopg 3
    python3-django python3-psycopg2  # Django 3.2 (bookworm) talks psycopg2
    nodejs                           # node-postgres and Express come from npm
    golang-go golang-github-jackc-pgx-v4-dev
    default-jdk-headless libpostgresql-jdbc-java libjackson2-databind-java
    pgbouncer
)
JDBC_CLASSPATH=/usr/share/java/postgresql.jar:/usr/share/java/jackson-databind.jar:/usr/share/java/jackson-core.jar:/usr/share/java/jackson-annotations.jar
# Debian's interpreter with Debian's psycopg and Django, whatever else is on PATH
CLIENTS_PYTHON=/usr/bin/python3

clients_deps() {
    ensure_deps "${CLIENTS_PACKAGES[@]}"
    # nodejs from another repository may bring npm itself; Debian's needs npm
    command -v npm >/dev/null 2>&1 || ensure_deps "${CLIENTS_PACKAGES[@]}" npm
}

# --- PgBouncer, as OS user postgres, in the cluster's temp dir ---------------

BOUNCER_DIR=""
BOUNCER_PORT=""

bouncer_start() {
    BOUNCER_DIR="$IDEM_PG_DIR/pgbouncer"
    BOUNCER_PORT="$(free_tcp_port)"
    mkdir -p "$BOUNCER_DIR"
    # auth_type trust still looks the user up in auth_file
    echo '"postgres" ""' >"$BOUNCER_DIR/userlist.txt"
    cat >"$BOUNCER_DIR/pgbouncer.ini" <<EOF
[databases]
* = host=$IDEM_PG_DIR port=$PGPORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $BOUNCER_DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
; fewer server connections than concurrent clients: transactions of one
; client land on backends that others used before
default_pool_size = 4
max_client_conn = 100
; pgjdbc sends it at start-up; PgBouncer would refuse an unknown parameter
ignore_startup_parameters = extra_float_digits
logfile = $BOUNCER_DIR/pgbouncer.log
pidfile = $BOUNCER_DIR/pgbouncer.pid
EOF
    chown -R postgres:postgres "$BOUNCER_DIR"
    add_cleanup bouncer_stop
    as_postgres "$BOUNCER_DIR" pgbouncer -d -q "$BOUNCER_DIR/pgbouncer.ini" || return 1
    local i
    for ((i = 0; i < 50; i++)); do
        if as_postgres "$BOUNCER_DIR" psql -X -q -h 127.0.0.1 -p "$BOUNCER_PORT" -d pgbouncer \
                -c 'SHOW VERSION' >/dev/null 2>&1; then
            echo "== PgBouncer $(pgbouncer --version | head -n 1 | awk '{print $2}') in transaction mode on 127.0.0.1:$BOUNCER_PORT, pool size 4"
            return 0
        fi
        sleep 0.2
    done
    echo "PgBouncer did not start"
    tail -n 20 "$BOUNCER_DIR/pgbouncer.log" 2>/dev/null
    return 1
}

bouncer_stop() {
    local pid i
    [[ -n "$BOUNCER_DIR" && -s "$BOUNCER_DIR/pgbouncer.pid" ]] || return 0
    pid="$(cat "$BOUNCER_DIR/pgbouncer.pid")"
    as_postgres "$BOUNCER_DIR" kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$BOUNCER_DIR/pgbouncer.pid"
}

# --- the client programs ------------------------------------------------------

clients_versions() {
    local pg_js="$WORK/test/clients/node/node_modules/pg/package.json"
    local ex_js="$WORK/examples/express/node_modules/express/package.json"
    echo "== versions"
    echo "   psycopg $($CLIENTS_PYTHON -c 'import psycopg; print(psycopg.__version__)') (libpq $($CLIENTS_PYTHON -c 'import psycopg; print(psycopg.pq.version())')), Python $($CLIENTS_PYTHON -c 'import platform; print(platform.python_version())')"
    echo "   node-postgres $(node -p "require('$pg_js').version"), Node.js $(node --version)"
    echo "   pgx $(dpkg-query -W -f='${Version}' golang-github-jackc-pgx-v4-dev) (v4), $(go version | awk '{print $3}')"
    echo "   pgjdbc $(dpkg-query -W -f='${Version}' libpostgresql-jdbc-java), Java $(java -version 2>&1 | head -n 1 | awk -F'"' '{print $2}')"
    echo "   Django $($CLIENTS_PYTHON -c 'import django; print(django.get_version())') (psycopg2 $($CLIENTS_PYTHON -c 'import psycopg2; print(psycopg2.__version__.split()[0])')), Express $(node -p "require('$ex_js').version")"
}

clients_build() {
    local d
    # npm as root (its registry settings may be root's), into the test copy
    for d in "$WORK/test/clients/node" "$WORK/examples/express"; do
        (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
            echo "npm ci failed in $d"
            return 1
        }
    done
    chown -R postgres:postgres "$WORK"
    # pgx from /usr/share/gocode in GOPATH mode: nothing is downloaded
    as_postgres "$WORK/test/clients/pgx" env GO111MODULE=off GOPATH=/usr/share/gocode \
        GOCACHE="$WORK/.gocache" GOFLAGS= GOPROXY=off \
        go build -o pgx-client client.go || return 1
    as_postgres "$WORK/test/clients/jdbc" javac -d classes -cp "$JDBC_CLASSPATH" Client.java || return 1
}

# clients_db NAME: a fresh database NAME with test/clients/schema.sql
clients_db() {
    as_postgres "$WORK" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
        -c 'SET client_min_messages = warning' -c "DROP DATABASE IF EXISTS $1" \
        -c "CREATE DATABASE $1" >/dev/null &&
        as_postgres "$WORK" psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f test/clients/schema.sql >/dev/null
}

# clients_run DRIVER MODE: run one program; its "ok"/"not ok" lines go to
# the output and to $WORK/clients.tap
clients_run() {
    local driver="$1" mode="$2" db="cl_$1_$2" host port rc
    local -a cmd
    case "$driver" in
        psycopg) cmd=("$CLIENTS_PYTHON" test/clients/psycopg/client.py) ;;
        node) cmd=(node test/clients/node/client.js) ;;
        pgx) cmd=(test/clients/pgx/pgx-client) ;;
        jdbc) cmd=(java -cp "test/clients/jdbc/classes:$JDBC_CLASSPATH" Client) ;;
    esac
    if [[ $mode == pooler ]]; then
        host=127.0.0.1 port="$BOUNCER_PORT"
    elif [[ $driver == jdbc ]]; then
        host=127.0.0.1 port="$PGPORT"
    else
        host="$PGHOST" port="$PGPORT"
    fi
    clients_db "$db" || return 1
    set +e
    as_postgres "$WORK" env PGHOST="$host" PGPORT="$port" PGDATABASE="$db" \
        timeout 120 "${cmd[@]}" "$mode" 2>&1 | tee -a "$WORK/clients.tap"
    rc=${PIPESTATUS[0]}
    set -e
    return "$rc"
}

# --- the framework examples ----------------------------------------------------

# example_serve NAME DIR PORT CMD...: start an example app as user postgres on
# 127.0.0.1:PORT, talking to database NAME; its pid goes to EXAMPLE_PID
EXAMPLE_PID=""
example_serve() {
    local name="$1" dir="$2" port="$3" i
    shift 3
    rm -f "$WORK/$name.pid"
    # the shell writes its pid and becomes the app, so the pid is the app's
    # shellcheck disable=SC2016
    as_postgres "$dir" sh -c 'echo $$ >"$0"; exec "$@"' "$WORK/$name.pid" \
        env PGDATABASE="$name" PORT="$port" "$@" >"$WORK/$name.log" 2>&1 &
    add_cleanup example_stop
    for ((i = 0; i < 300; i++)); do
        [[ -n "$EXAMPLE_PID" ]] || EXAMPLE_PID="$(cat "$WORK/$name.pid" 2>/dev/null)"
        if [[ -n "$EXAMPLE_PID" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if [[ -n "$EXAMPLE_PID" ]] && ! kill -0 "$EXAMPLE_PID" 2>/dev/null; then
            break  # it exited
        fi
        sleep 0.1
    done
    echo "$name did not start listening on 127.0.0.1:$port:"
    cat "$WORK/$name.log"
    return 1
}

example_stop() {
    local i
    if [[ -n "$EXAMPLE_PID" ]]; then
        kill -TERM "$EXAMPLE_PID" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$EXAMPLE_PID" 2>/dev/null || break
            sleep 0.1
        done
        EXAMPLE_PID=""
    fi
    wait 2>/dev/null || true
}

# clients_example express|django direct|pooler: serve the example, hammer it
clients_example() {
    local name="ex_$1_$2" port rc=0 host="$PGHOST" dbport="$PGPORT"
    port="$(free_tcp_port)"
    if [[ $2 == pooler ]]; then
        host=127.0.0.1 dbport="$BOUNCER_PORT"
    fi
    as_postgres "$WORK" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
        -c 'SET client_min_messages = warning' -c "DROP DATABASE IF EXISTS $name" \
        -c "CREATE DATABASE $name" >/dev/null || return 1
    case "$1" in
        express)
            as_postgres "$WORK" psql -X -q -v ON_ERROR_STOP=1 -d "$name" -f examples/schema.sql >/dev/null || return 1
            example_serve "$name" "$WORK/examples/express" "$port" \
                env PGHOST="$host" PGPORT="$dbport" node app.js || rc=1
            ;;
        django)
            as_postgres "$WORK" psql -X -q -v ON_ERROR_STOP=1 -d "$name" -c 'CREATE EXTENSION idempotency' || return 1
            as_postgres "$WORK/examples/django" env PGDATABASE="$name" \
                "$CLIENTS_PYTHON" manage.py migrate --run-syncdb -v 0 || return 1
            example_serve "$name" "$WORK/examples/django" "$port" env PGHOST="$host" PGPORT="$dbport" \
                "$CLIENTS_PYTHON" manage.py runserver --noreload "127.0.0.1:$port" || rc=1
            ;;
    esac
    if ((rc == 0)); then
        set +e
        as_postgres "$WORK" env PGDATABASE="$name" timeout 120 \
            "$CLIENTS_PYTHON" test/clients/http_hammer.py "$1 $2" "http://127.0.0.1:$port/orders" 2>&1 |
            tee -a "$WORK/clients.tap"
        rc=${PIPESTATUS[0]}
        set -e
    fi
    example_stop
    if ((rc != 0)); then
        echo "----- $1 example's log, last 30 lines -----"
        tail -n 30 "$WORK/$name.log"
    fi
    return "$rc"
}

# The controls, run last through PgBouncer: they show that the pooler runs
# prove something.  psycopg with its default prepare_threshold must fail with
# 42P05 (transactions do move between server connections), and a plain SET
# must reach another client's transaction (what SET LOCAL is for).
bouncer_controls() {
    local out rc=0
    local -a env=(env PGHOST=127.0.0.1 PGPORT="$BOUNCER_PORT" PGDATABASE=cl_control)
    clients_db cl_control || return 1
    out="$(as_postgres "$WORK" "${env[@]}" timeout 120 "$CLIENTS_PYTHON" test/clients/psycopg/client.py direct 2>&1)" || true
    if grep -q '42P05' <<<"$out"; then
        clients_tap "ok - control: psycopg's default prepare_threshold through PgBouncer fails with 42P05"
    else
        clients_tap "not ok - control: psycopg's default prepare_threshold through PgBouncer did not fail with 42P05"
        grep -v '^ok' <<<"$out"
        rc=1
    fi
    out="$(as_postgres "$WORK" "${env[@]}" timeout 60 "$CLIENTS_PYTHON" -c '
import psycopg
with psycopg.connect(autocommit=True, prepare_threshold=None) as a:
    a.execute("SET idempotency.wait = off")  # SET, not SET LOCAL
seen = set()
for _ in range(8):
    with psycopg.connect(autocommit=True, prepare_threshold=None) as b:
        seen.add(b.execute("SELECT coalesce(current_setting(%s, true), %s)", ("idempotency.wait", "on")).fetchone()[0])
print("leaked" if "off" in seen else f"kept {seen}")' 2>&1)" || true
    if [[ $out == leaked ]]; then
        clients_tap "ok - control: a plain SET idempotency.wait through PgBouncer reaches another client's transaction"
    else
        clients_tap "not ok - control: a plain SET through PgBouncer did not reach another client: $out"
        rc=1
    fi
    return "$rc"
}

# clients_tap LINE: print a check's line and keep it for the count
clients_tap() {
    echo "$1" | tee -a "$WORK/clients.tap"
}

run_clients() {
    local failed=0 driver mode example
    : >"$WORK/clients.tap"
    clients_build || return 1
    clients_versions
    bouncer_start || return 1
    for driver in psycopg node pgx jdbc; do
        for mode in direct pooler; do
            clients_run "$driver" "$mode" || failed=1
        done
    done
    for example in express django; do
        for mode in direct pooler; do
            clients_example "$example" "$mode" || failed=1
        done
    done
    bouncer_controls || failed=1
    bouncer_stop
    set +e
    as_postgres "$WORK" "$CLIENTS_PYTHON" test/clients/readme.py | tee -a "$WORK/clients.tap"
    ((PIPESTATUS[0] == 0)) || failed=1
    set -e
    echo "== clients: $(grep -c '^ok' "$WORK/clients.tap") checks passed, $(grep -c '^not ok' "$WORK/clients.tap") failed"
    return "$failed"
}

after_clients_failure() {
    if [[ -n "$BOUNCER_DIR" && -s "$BOUNCER_DIR/pgbouncer.log" ]]; then
        echo "----- PgBouncer log, last 20 lines -----"
        tail -n 20 "$BOUNCER_DIR/pgbouncer.log"
    fi
    show_server_log
}
