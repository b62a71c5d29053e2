// An order endpoint of three writes behind idempotent() (idempotency.js).
// Run: PGHOST=... PGDATABASE=... PORT=3000 node app.js  (tables: ../schema.sql)
'use strict';
const express = require('express');
const pg = require('pg');
const { idempotent } = require('./idempotency');

const pool = new pg.Pool({ max: 10 }); // connection settings from PG*
const app = express();
app.use(express.json());

// README:express-route
app.post('/orders', idempotent(pool, async (req, db) => {
  const { sku, quantity } = req.body;
  const order = await db.query('INSERT INTO orders(sku, quantity) VALUES ($1, $2) RETURNING id', [sku, quantity]);
  await db.query('UPDATE stock SET available = available - $2 WHERE sku = $1', [sku, quantity]);
  await db.query('INSERT INTO ledger(order_id, amount) VALUES ($1, $2 * 9.90)', [order.rows[0].id, quantity]);
  return { status: 201, body: { order_id: Number(order.rows[0].id), sku, quantity } };
}));
// README:end

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
