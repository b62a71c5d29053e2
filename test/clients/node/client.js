// idempotency from node-postgres: the README's snippets, run against a server.
//
// Usage: node client.js direct|pooler   (the server comes from the PG* environment)
// node-postgres sends parameterized queries as unnamed statements, which
// PgBouncer's transaction mode passes through; both modes use the defaults.
'use strict';
const pg = require('pg');

const MODE = process.argv[2];
let checks = 0;
const failures = [];

function check(ok, what) {
  checks += 1;
  console.log(`${ok ? 'ok' : 'not ok'} ${checks} - node-postgres ${MODE}: ${what}`);
  if (!ok) failures.push(what);
}

async function sqlstateOf(fn) {
  try {
    await fn();
  } catch (err) {
    return err.code;
  }
  return null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// README:node-postgres
async function pay(client, key, customer, amount) {
  const { rows } = await client.query(
    'SELECT idem_execute($1, $2, $3::text, $4::numeric) AS result',
    [key, 'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id', customer, amount]);
  return rows[0].result;            // an object: { replayed, command, row_count, rows }
}

async function httpStatus(client, key, customer, amount) {
  try {
    return [200, await pay(client, key, customer, amount)];
  } catch (err) {
    if (err.code === 'IK001') return [422];   // the key was used with a different request
    if (err.code === 'IK002') return [409];   // in flight elsewhere, with idempotency.wait = off
    throw err;                                // '40001': retry the transaction, it replays
  }
}
// README:end

async function connect() {
  const client = new pg.Client();
  await client.connect();
  return client;
}

async function main() {
  const a = await connect();
  const b = await connect();

  const first = await pay(a, 'pay-1', 'cus_1', '100.00');
  check(typeof first === 'object' && first.replayed === false && first.command === 'INSERT' &&
        Number.isInteger(first.rows[0].id), `new key runs, result decoded to an object: ${JSON.stringify(first)}`);
  const again = await pay(b, 'pay-1', 'cus_1', '100.00');
  check(again.replayed === true && JSON.stringify(again.rows) === JSON.stringify(first.rows),
        'the retry from another connection replays the stored rows');
  check((await a.query('SELECT count(*)::int AS n FROM payments')).rows[0].n === 1, 'one payment row');
  check((await httpStatus(a, 'pay-1', 'cus_1', '999.00'))[0] === 422, 'same key, other amount: IK001 (422)');

  // IK002: a holds the key uncommitted; b does not wait
  await a.query('BEGIN');
  check((await pay(a, 'pay-2', 'cus_2', '5')).replayed === false, 'holder runs pay-2');
  await b.query('BEGIN');
  await b.query('SET LOCAL idempotency.wait = off');
  check((await httpStatus(b, 'pay-2', 'cus_2', '5'))[0] === 409, 'SET LOCAL idempotency.wait = off: IK002 (409) while held');
  await b.query('ROLLBACK');
  await b.query('BEGIN');
  await b.query("SET LOCAL lock_timeout = '100ms'");
  check(await sqlstateOf(() => pay(b, 'pay-2', 'cus_2', '5')) === '55P03', "SET LOCAL lock_timeout = '100ms': 55P03 while held");
  await b.query('ROLLBACK');
  await a.query('ROLLBACK');
  check((await b.query('SHOW idempotency.wait')).rows[0]['idempotency.wait'] === 'on',
        'SET LOCAL ended with its transaction');

  // 40001: b's REPEATABLE READ snapshot predates a's commit of the key
  await b.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await b.query('SELECT 1');
  await pay(a, 'pay-3', 'cus_3', '7');
  const state = await sqlstateOf(() => pay(b, 'pay-3', 'cus_3', '7'));
  check(state === '40001', `REPEATABLE READ after a concurrent commit: ${state}`);
  await b.query('ROLLBACK');
  check((await pay(b, 'pay-3', 'cus_3', '7')).replayed === true, 'the retried transaction replays');

  await requestKeys(a, b);
  await a.end();
  await b.end();
  await hammer();
}

async function requestKeys(a, b) {
  async function order(client, key, sku) {
    await client.query('BEGIN');
    try {
      const request = { method: 'POST', path: '/orders', body: { sku } };
      const begun = await client.query('SELECT idem_begin($1, $2::jsonb) AS stored', [key, request]);
      let response = begun.rows[0].stored;
      if (response === null) {
        const { rows } = await client.query('INSERT INTO orders(sku) VALUES ($1) RETURNING id', [sku]);
        await client.query('INSERT INTO ledger(order_id, amount) VALUES ($1, 9.90)', [rows[0].id]);
        response = (await client.query('SELECT idem_finish($1, $2::jsonb) AS r',
          [key, { status: 201, body: { order_id: Number(rows[0].id) } }])).rows[0].r;
      }
      await client.query('COMMIT');
      return response;
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    }
  }
  const first = await order(a, 'req-1', 7);
  check(first.status === 201 && Number.isInteger(first.body.order_id),
        `idem_begin/idem_finish: two writes and the response stored: ${JSON.stringify(first)}`);
  check(JSON.stringify(await order(b, 'req-1', 7)) === JSON.stringify(first),
        'idem_begin on the retry returns the stored response as an object');
  const counts = (await a.query('SELECT (SELECT count(*) FROM orders)::int AS o, (SELECT count(*) FROM ledger)::int AS l')).rows[0];
  check(counts.o === 1 && counts.l === 1, 'one order and one ledger row');
  check(await sqlstateOf(() => order(b, 'req-1', 8)) === 'IK001', 'idem_begin with another request: IK001');
}

// Workers on their own connections retry the same keys, with SET LOCAL
// settings, until each call returns a result: one row per key must remain,
// every worker must see that row's id, and no setting may leak.
async function hammer(workers = 8, keys = 12, rounds = 2) {
  const seen = new Map();
  const problems = [];
  async function worker(n) {
    const client = await connect();
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < keys; i++) {
        const key = `hammer-${(i + 5 * n + 7 * round) % keys}`;
        let done = false;
        for (let attempt = 0; attempt < 400 && !done; attempt++) {
          try {
            await client.query('BEGIN');
            const s = (await client.query(
              "SELECT coalesce(current_setting('idempotency.wait', true), 'on') AS wait," +
              " coalesce(current_setting('idempotency.tenant', true), '') AS tenant, current_setting('lock_timeout') AS lt")).rows[0];
            if (s.wait !== 'on' || s.tenant !== '' || s.lt !== '0') {
              problems.push(`worker ${n} started a transaction with wait=${s.wait} tenant=${s.tenant} lock_timeout=${s.lt}`);
            }
            await client.query("SET LOCAL idempotency.tenant = 'hammer'"); // the same for all: keys shared
            await client.query("SET LOCAL lock_timeout = '5s'");
            if (n % 2) await client.query('SET LOCAL idempotency.wait = off');
            const r = (await client.query('SELECT idem_execute($1, $2, $3::text) AS r',
              [key, 'INSERT INTO hammer(key) VALUES ($1) RETURNING id', key])).rows[0].r;
            await client.query('COMMIT');
            if (!seen.has(key)) seen.set(key, new Set());
            seen.get(key).add(r.rows[0].id);
            done = true;
          } catch (err) {
            await client.query('ROLLBACK');
            if (err.code !== 'IK002' && err.code !== '40001') {
              problems.push(`worker ${n} ${key}: ${err.code} ${err.message}`);
              done = true;
            } else {
              await sleep(2);
            }
          }
        }
        if (!done) problems.push(`worker ${n} ${key}: no result after 400 attempts`);
      }
    }
    await client.end();
  }
  await Promise.all(Array.from({ length: workers }, (_, n) => worker(n)));
  check(problems.length === 0, `${workers} concurrent workers: no errors and no leaked settings: ${problems.slice(0, 3)}`);
  const c = await connect();
  const { rows } = await c.query('SELECT key, array_agg(id) AS ids FROM hammer GROUP BY key');
  await c.end();
  check(rows.length === keys && rows.every((r) => r.ids.length === 1),
        `one effect per key (${keys} keys, ${workers} workers x ${rounds} rounds)`);
  check(rows.every((r) => seen.has(r.key) && seen.get(r.key).size === 1 && seen.get(r.key).has(Number(r.ids[0]))),
        'every worker got the stored id of each key');
}

main().catch((err) => {
  check(false, `unexpected error: ${err.stack}`);
}).finally(() => {
  console.log(`# node-postgres ${MODE}: ${checks - failures.length} passed, ${failures.length} failed`);
  process.exitCode = failures.length ? 1 : 0;
});
