"""idempotency from psycopg 3: the README's snippets, run against a server.

Usage: client.py direct|pooler   (the server comes from the PG* environment)
"pooler" connects with the settings the README recommends behind PgBouncer in
transaction mode.  Prints one "ok"/"not ok" line per check, exits 1 on a failure.
"""
import random
import sys
import threading
import time
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

MODE = sys.argv[1]
dsn = ""  # libpq takes host, port, database and user from PG*
failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    print(("ok " if ok else "not ok ") + f"{checks} - psycopg {MODE}: {what}", flush=True)
    if not ok:
        failures.append(what)


def connect():
    if MODE == "pooler":
        # README:psycopg-pooler
        conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)  # never prepare
        # README:end
    else:
        conn = psycopg.connect(dsn, autocommit=True)
    return conn


def sqlstate_of(fn):
    try:
        fn()
    except psycopg.Error as e:
        return e.sqlstate
    return None


# README:psycopg
def pay(conn, key, customer, amount):
    with conn.transaction():
        return conn.execute(
            "SELECT idem_execute(%s, %s, %s::text, %s::numeric)",
            (key, "INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id",
             customer, amount)).fetchone()[0]      # a dict


def http_status(conn, key, customer, amount):
    try:
        return 200, pay(conn, key, customer, amount)
    except psycopg.Error as e:
        if e.sqlstate == "IK001":      # the key was used with a different request
            return 422, None
        if e.sqlstate == "IK002":      # in flight elsewhere, with idempotency.wait = off
            return 409, None
        raise                          # "40001": retry the transaction, it replays
# README:end


def main():
    a = connect()
    b = connect()

    first = pay(a, "pay-1", "cus_1", Decimal("100.00"))
    check(isinstance(first, dict) and first["replayed"] is False
          and isinstance(first["rows"][0]["id"], int) and first["command"] == "INSERT",
          f"new key runs, result decoded to a dict: {first}")
    again = pay(b, "pay-1", "cus_1", Decimal("100.00"))
    check(again["replayed"] is True and again["rows"] == first["rows"],
          "the retry from another connection replays the stored rows")
    check(a.execute("SELECT count(*) FROM payments").fetchone()[0] == 1, "one payment row")

    check(http_status(a, "pay-1", "cus_1", Decimal("999.00"))[0] == 422,
          "same key, other amount: IK001 (422)")

    # IK002: a holds the key uncommitted; b does not wait
    with a.transaction() as holder:
        pay_in_tx = a.execute(
            "SELECT idem_execute(%s, %s, %s::text, %s::numeric)",
            ("pay-2", "INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id",
             "cus_2", Decimal("5"))).fetchone()[0]
        check(pay_in_tx["replayed"] is False, "holder runs pay-2")

        def in_flight():
            with b.transaction():
                b.execute("SET LOCAL idempotency.wait = off")
                b.execute("SELECT idem_execute(%s, %s, %s::text, %s::numeric)",
                          ("pay-2", "INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id",
                           "cus_2", Decimal("5")))
        check(sqlstate_of(in_flight) == "IK002", "SET LOCAL idempotency.wait = off: IK002 while held")

        def timed_out():
            with b.transaction():
                b.execute("SET LOCAL lock_timeout = '100ms'")
                pay(b, "pay-2", "cus_2", Decimal("5"))
        check(sqlstate_of(timed_out) == "55P03", "SET LOCAL lock_timeout = '100ms': 55P03 while held")
        raise psycopg.Rollback(holder)
    check(b.execute("SHOW idempotency.wait").fetchone()[0] == "on",
          "SET LOCAL ended with its transaction")

    # 40001: b's REPEATABLE READ snapshot predates a's commit of the key
    b.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    b.execute("SELECT 1")
    pay(a, "pay-3", "cus_3", Decimal("7"))
    state = sqlstate_of(lambda: b.execute(
        "SELECT idem_execute(%s, %s, %s::text, %s::numeric)",
        ("pay-3", "INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id",
         "cus_3", Decimal("7"))))
    check(state == "40001", f"REPEATABLE READ after a concurrent commit: {state}")
    b.execute("ROLLBACK")
    check(pay(b, "pay-3", "cus_3", Decimal("7"))["replayed"] is True, "the retried transaction replays")

    request_keys(a, b)
    a.close()
    b.close()
    hammer()


def request_keys(a, b):
    def order(conn, key, sku):
        with conn.transaction():
            stored = conn.execute("SELECT idem_begin(%s, %s)",
                                  (key, Jsonb({"method": "POST", "path": "/orders", "body": {"sku": sku}}))).fetchone()[0]
            if stored is not None:
                return stored
            order_id = conn.execute("INSERT INTO orders(sku) VALUES (%s) RETURNING id", (sku,)).fetchone()[0]
            conn.execute("INSERT INTO ledger(order_id, amount) VALUES (%s, %s)", (order_id, Decimal("9.90")))
            return conn.execute("SELECT idem_finish(%s, %s)",
                                (key, Jsonb({"status": 201, "body": {"order_id": order_id}}))).fetchone()[0]

    first = order(a, "req-1", 7)
    check(first["status"] == 201 and isinstance(first["body"]["order_id"], int),
          f"idem_begin/idem_finish: two writes and the response stored: {first}")
    check(order(b, "req-1", 7) == first, "idem_begin on the retry returns the stored response as a dict")
    check(a.execute("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM ledger)").fetchone() == (1, 1),
          "one order and one ledger row")
    check(sqlstate_of(lambda: order(b, "req-1", 8)) == "IK001", "idem_begin with another request: IK001")

    def as_tenant(tenant):
        with a.transaction():
            a.execute("SELECT set_config('idempotency.tenant', %s, true)", (tenant,))
            return pay(a, "pay-1", "cus_1", Decimal("100.00"))
    first_b = as_tenant("tenant-b")
    check(first_b["replayed"] is False and as_tenant("tenant-b")["replayed"] is True
          and as_tenant("")["replayed"] is True,
          "SET LOCAL idempotency.tenant: pay-1 of another tenant runs once, and the default tenant's replays")


def hammer(workers=8, keys=12, rounds=2):
    """Workers on their own connections retry the same keys, with SET LOCAL
    settings, until each call returns a result: one row per key must remain,
    every worker must see that row's id, and no setting may leak."""
    seen = {}
    problems = []
    lock = threading.Lock()

    def worker(n):
        conn = connect()
        rnd = random.Random(n)
        for _ in range(rounds):
            order = list(range(keys))
            rnd.shuffle(order)
            for k in order:
                key = f"hammer-{k}"
                for attempt in range(400):
                    try:
                        with conn.transaction():
                            settings = conn.execute(
                                "SELECT coalesce(current_setting('idempotency.wait', true), 'on'),"
                                " coalesce(current_setting('idempotency.tenant', true), ''),"
                                " current_setting('lock_timeout')").fetchone()
                            if settings != ("on", "", "0"):
                                problems.append(f"worker {n} started a transaction with wait, tenant, lock_timeout {settings}")
                            conn.execute("SET LOCAL idempotency.tenant = 'hammer'")  # the same for all: keys shared
                            conn.execute("SET LOCAL lock_timeout = '5s'")
                            if n % 2:
                                conn.execute("SET LOCAL idempotency.wait = off")
                            r = conn.execute(
                                "SELECT idem_execute(%s, %s, %s::text)",
                                (key, "INSERT INTO hammer(key) VALUES ($1) RETURNING id", key)).fetchone()[0]
                        with lock:
                            seen.setdefault(key, set()).add(r["rows"][0]["id"])
                        break
                    except psycopg.Error as e:
                        if e.sqlstate not in ("IK002", "40001"):
                            problems.append(f"worker {n} {key}: {e.sqlstate} {e}")
                            break
                        time.sleep(0.002)
                else:
                    problems.append(f"worker {n} {key}: no result after 400 attempts")
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    check(not any(t.is_alive() for t in threads), f"{workers} concurrent workers finished")
    check(not problems, f"no errors and no leaked settings: {problems[:3]}")
    with psycopg.connect(dsn) as conn:
        rows = dict(conn.execute("SELECT key, array_agg(id) FROM hammer GROUP BY key").fetchall())
    check(len(rows) == keys and all(len(ids) == 1 for ids in rows.values()),
          f"one effect per key ({keys} keys, {workers} workers x {rounds} rounds)")
    check(all(seen.get(key) == set(ids) for key, ids in rows.items()),
          "every worker got the stored id of each key")


if __name__ == "__main__":
    main()
    print(f"# psycopg {MODE}: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)
