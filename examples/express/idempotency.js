// Idempotency-Key for Express: the handler's writes, the key and the answer
// commit in one transaction (idem_begin / idem_finish); a retry gets the
// stored answer and runs nothing.
'use strict';

// idempotent(pool, handler): an Express handler that runs
// `await handler(req, db)` (db: a pg client inside the request's transaction;
// it returns { status, body }) once per Idempotency-Key.
function idempotent(pool, handler) {
  return async (req, res, next) => {
    const key = req.get('Idempotency-Key');
    if (!key) return res.status(400).json({ error: 'Idempotency-Key header required' });
    const db = await pool.connect();
    try {
      await db.query('BEGIN');
      // SET LOCAL only: behind PgBouncer, SET would stay on the server connection
      await db.query("SELECT set_config('idempotency.tenant', $1, true), set_config('idempotency.wait', 'off', true)",
        [req.get('X-Account') ?? '']);  // stand-in for your authenticated account
      const request = { method: req.method, path: req.path, body: req.body ?? null };
      const { rows } = await db.query('SELECT idem_begin($1, $2::jsonb) AS stored', [key, request]);
      let answer = rows[0].stored;
      if (answer) {
        res.set('Idempotent-Replayed', 'true');
      } else {
        const { status, body } = await handler(req, db);
        answer = { status, body: JSON.stringify(body) }; // replayed byte for byte
        await db.query('SELECT idem_finish($1, $2::jsonb)', [key, answer]);
      }
      await db.query('COMMIT');
      res.status(answer.status).type('json').send(answer.body);
    } catch (err) {
      await db.query('ROLLBACK').catch(() => {});
      if (err.code === 'IK001') res.status(422).json({ error: 'Idempotency-Key reused for another request' });
      else if (err.code === 'IK002') res.status(409).json({ error: 'this request is in progress; retry later' });
      else next(err);
    } finally {
      db.release();
    }
  };
}

module.exports = { idempotent };
