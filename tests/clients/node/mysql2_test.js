#!/usr/bin/env node
// mysql2 (default settings and auth) against a MySQL endpoint: the testbed primary, or tandem.
// Target from the environment: TANDEM_HOST, TANDEM_PORT (required), TANDEM_USER, TANDEM_PASSWORD,
// TANDEM_DB (default appdb). Prints "ok - name" / "not ok - name: detail"; exits 1 if any failed.
// Tables are named node_mysql2_<pid>, so concurrent runs (direct and proxied) do not collide.
'use strict';

const assert = require('node:assert/strict');
const mysql = require('mysql2/promise');

const port = Number(process.env.TANDEM_PORT || 0);
if (!port) {
  console.error('TANDEM_PORT is not set');
  process.exit(2);
}
const cfg = {
  host: process.env.TANDEM_HOST || '127.0.0.1',
  port,
  user: process.env.TANDEM_USER || 'app',
  password: process.env.TANDEM_PASSWORD ?? 'apppass',
  database: process.env.TANDEM_DB || 'appdb',
  connectTimeout: 10000,
};
const t = `node_mysql2_${process.pid}`;
const EMOJI = 'emoji 😀🎉🦀 ü 日本';

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
    passed++;
    return true;
  } catch (e) {
    const code = e.errno ? ` [${e.errno}]` : '';
    console.log(`not ok - ${name}: ${e.message.split('\n').join(' ')}${code}`);
    failed++;
    return false;
  }
}

async function expectError(c, sql, params, errno) {
  try {
    if (params === undefined) await c.query(sql);
    else await c.execute(sql, params);
  } catch (e) {
    assert.equal(e.errno, errno, `error code (${e.message})`);
    return;
  }
  throw new Error(`no error for: ${sql}`);
}

async function main() {
  let c;
  const connected = await check('connect', async () => {
    c = await mysql.createConnection(cfg); // default charset utf8mb4, default auth
    const [rows] = await c.query('SELECT 1 AS one, DATABASE() AS db');
    assert.deepEqual(rows[0], { one: 1, db: cfg.database });
  });
  if (!connected) return finish(c);

  await check('query', async () => {
    const [rows, fields] = await c.query('SELECT id, email FROM users ORDER BY id LIMIT 2');
    assert.deepEqual(fields.map((f) => f.name), ['id', 'email']);
    assert.deepEqual(rows, [
      { id: 1, email: 'alice@example.com' },
      { id: 2, email: 'bob@example.com' },
    ]);
  });

  await check('create table', async () => {
    await c.query(`DROP TABLE IF EXISTS ${t}`);
    await c.query(`CREATE TABLE ${t} (id INT AUTO_INCREMENT PRIMARY KEY, i INT NULL, f DOUBLE NULL,
      s VARCHAR(100) NULL, b BLOB NULL, UNIQUE KEY uq_s (s)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  });

  await check('execute (prepared) insert/select', async () => {
    const blob = Buffer.from([0, 1, 0x62, 0xff, 0xfe, 0]);
    const [res] = await c.execute(`INSERT INTO ${t} (i, f, s, b) VALUES (?, ?, ?, ?)`, [42, 3.5, 'hello', blob]);
    assert.equal(res.affectedRows, 1);
    assert.ok(res.insertId >= 1, `insertId ${res.insertId}`);
    await c.execute(`INSERT INTO ${t} (i, f, s, b) VALUES (?, ?, ?, ?)`, [-7, null, 'second', null]);
    const [rows] = await c.execute(`SELECT i, f, s, b FROM ${t} WHERE i = ?`, [42]);
    assert.deepEqual(rows, [{ i: 42, f: 3.5, s: 'hello', b: blob }]);
    const [again] = await c.execute(`SELECT i, f, s, b FROM ${t} WHERE i = ?`, [-7]); // cached statement
    assert.deepEqual(again, [{ i: -7, f: null, s: 'second', b: null }]);
  });

  await check('query with placeholders (client-side escaping)', async () => {
    const [res] = await c.query(`INSERT INTO ${t} (i, s) VALUES ?`, [[[1, 'a'], [2, 'b'], [3, 'c']]]);
    assert.equal(res.affectedRows, 3);
    const [upd] = await c.query(`UPDATE ${t} SET f = ? WHERE s IN (?)`, [1.5, ['a', 'b', 'c']]);
    assert.equal(upd.affectedRows, 3);
  });

  await check('transaction rollback', async () => {
    await c.beginTransaction();
    await c.execute(`INSERT INTO ${t} (i, s) VALUES (?, ?)`, [100, 'rolled-back']);
    const [[inside]] = await c.query(`SELECT COUNT(*) AS n FROM ${t} WHERE s = 'rolled-back'`);
    await c.rollback();
    const [[after]] = await c.query(`SELECT COUNT(*) AS n FROM ${t} WHERE s = 'rolled-back'`);
    assert.deepEqual([inside.n, after.n], [1, 0]);
  });

  await check('transaction commit visible to another connection', async () => {
    await c.beginTransaction();
    await c.execute(`INSERT INTO ${t} (i, s) VALUES (?, ?)`, [101, 'committed']);
    await c.commit();
    const other = await mysql.createConnection(cfg);
    try {
      const [[row]] = await other.query(`SELECT COUNT(*) AS n FROM ${t} WHERE s = 'committed'`);
      assert.equal(row.n, 1);
    } finally {
      await other.end();
    }
  });

  await check('error 1062 duplicate key', () => expectError(c, `INSERT INTO ${t} (s) VALUES (?)`, ['hello'], 1062));
  await check('error 1064 syntax', () => expectError(c, 'SELEC 1', undefined, 1064));
  await check('error 1146 unknown table (prepare)', () =>
    expectError(c, `SELECT * FROM node_no_such_${process.pid} WHERE id = ?`, [1], 1146));
  await check('connection usable after errors', async () => {
    const [[row]] = await c.query('SELECT 6 AS x');
    assert.equal(row.x, 6);
  });

  await check('utf8mb4 emoji round-trip', async () => {
    const [res] = await c.execute(`INSERT INTO ${t} (s) VALUES (?)`, [EMOJI]);
    const [[row]] = await c.execute(`SELECT s, CHAR_LENGTH(s) AS cl FROM ${t} WHERE id = ?`, [res.insertId]);
    assert.deepEqual([row.s, row.cl], [EMOJI, [...EMOJI].length]);
    const [[seed]] = await c.query('SELECT title FROM posts WHERE id = 1');
    assert.equal(seed.title, 'Hello world 👋');
  });

  // MariaDB's extended metadata (MARIADB_CLIENT_EXTENDED_METADATA, asked for by mysql2 when the
  // server offers it) marks JSON_EXTRACT's column as json: mysql2 then parses it.
  await check('extended metadata: json column parsed (query and execute)', async () => {
    const sql = `SELECT JSON_EXTRACT('{"a": [1, 2]}', '$') AS j`;
    const [[q]] = await c.query(sql);
    assert.deepEqual(q.j, { a: [1, 2] });
    const [[e]] = await c.execute(sql);
    assert.deepEqual(e.j, { a: [1, 2] });
  });

  await check('drop table', () => c.query(`DROP TABLE ${t}`));
  return finish(c);
}

async function finish(c) {
  if (c) await c.end().catch(() => {});
  console.log(`mysql2: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch((e) => {
  console.log(`not ok - unexpected: ${e.stack}`);
  process.exitCode = 1;
});
