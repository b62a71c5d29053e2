"""Concurrent duplicate requests against an example app (examples/).

Usage: http_hammer.py NAME URL   (URL of the app's POST /orders, on 127.0.0.1;
the app's database from the PG* environment, with examples/schema.sql tables)

Workers send the same keys at the same time and retry a 409 (in progress)
until they get an answer, a bounded number of times.  Checks: every answer to
a key is the same, one order (three writes) per key, a replay says
Idempotent-Replayed, another body under a used key is 422, and another
account's key of the same name is a request of its own.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

import psycopg

NAME, URL = sys.argv[1], sys.argv[2]
WORKERS, KEYS, ROUNDS = 8, 10, 2
checks = 0
failures = []


def check(ok, what):
    global checks
    checks += 1
    print(("ok " if ok else "not ok ") + f"{checks} - {NAME}: {what}", flush=True)
    if not ok:
        failures.append(what)


def post(key, body, account=None):
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    if account:
        headers["X-Account"] = account
    req = urllib.request.Request(URL, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers.get("Idempotent-Replayed") == "true"
    except urllib.error.HTTPError as e:
        return e.code, e.read(), False


def body_of(k):
    return {"sku": k % 3 + 1, "quantity": 2}


def main():
    with psycopg.connect(autocommit=True) as db:
        db.execute("INSERT INTO stock(sku, available) VALUES (1, 1000), (2, 1000), (3, 1000)")

    answers = {}
    replays = []
    in_flight = []
    problems = []
    lock = threading.Lock()

    def worker(n):
        for rnd in range(ROUNDS):
            for i in range(KEYS):
                k = (i + 3 * n + 7 * rnd) % KEYS
                for _ in range(500):
                    status, body, replayed = post(f"order-{k}", body_of(k))
                    if status != 409:
                        break
                    in_flight.append(k)
                    time.sleep(0.005)
                with lock:
                    answers.setdefault(k, []).append((status, body))
                    replays.append(replayed)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    check(not any(t.is_alive() for t in threads),
          f"{WORKERS} workers x {KEYS} keys x {ROUNDS} rounds done in {time.monotonic() - t0:.1f}s"
          f" ({len(in_flight)} answers 409 in flight, retried)")
    firsts = {k: a[0] for k, a in answers.items()}
    check(len(answers) == KEYS and all(s == 201 for s, _ in firsts.values()),
          f"every key answered 201: {sorted({s for a in answers.values() for s, _ in a})}")
    check(all(len(set(a)) == 1 and len(a) == WORKERS * ROUNDS for a in answers.values()),
          "every answer to a key is identical, byte for byte")
    check(sum(replays) >= KEYS * (WORKERS * ROUNDS - 1), f"{sum(replays)} answers were replays (Idempotent-Replayed)")
    ids = {json.loads(b)["order_id"] for s, b in firsts.values() if s == 201}
    with psycopg.connect() as db:
        orders, ledger, sold = db.execute(
            "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM ledger),"
            " (SELECT 3000 - sum(available) FROM stock)").fetchone()
        stored_ids = {r[0] for r in db.execute("SELECT id FROM orders")}
    check((orders, ledger, sold) == (KEYS, KEYS, 2 * KEYS) and ids == stored_ids,
          f"one effect per key: {orders} orders, {ledger} ledger rows, {sold} units for {KEYS} keys")

    status, _, _ = post("order-0", {"sku": 1, "quantity": 5})
    check(status == 422, f"the same key with another body: {status}")
    status, body, replayed = post("order-0", body_of(0), account="acct-b")
    check(status == 201 and not replayed and json.loads(body)["order_id"] not in ids,
          f"another account's order-0 is a request of its own: {status} {body.decode()}")
    check(post("order-0", body_of(0), account="acct-b")[1] == body, "and replays to that account")


if __name__ == "__main__":
    main()
    print(f"# {NAME}: {checks - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)
