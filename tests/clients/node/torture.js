#!/usr/bin/env node
// Concurrency torture test for a pooling/multiplexing proxy (or a plain server, as a baseline).
// Many concurrent sessions run a random mix of operations and check after each one that they only
// ever see their own data: markers in results, user variables, temporary tables, transactions.
// Target from the environment: TANDEM_HOST, TANDEM_PORT (required), TANDEM_USER, TANDEM_PASSWORD,
// TANDEM_DB (default appdb); TORTURE_SECONDS (default 5), TORTURE_SESSIONS (default 16),
// TORTURE_MAX_OPS (per session, default 50000), TORTURE_SEED (random by default, printed),
// TORTURE_OPS (comma-separated parts of operation names: run only those, for triage).
// Prints "ok - name" / "not ok - name: detail" (one line per distinct failure); exits 1 if any failed.
// Every operation has a 15 s limit (a hang is reported with the step it hung at) and a global
// watchdog ends the run if teardown itself hangs. Shared table: torture_<pid>, dropped at the end.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const net = require('node:net');
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
const SECONDS = Number(process.env.TORTURE_SECONDS || 5);
const SESSIONS = Math.max(1, Number(process.env.TORTURE_SESSIONS || 16));
const MAX_OPS = Number(process.env.TORTURE_MAX_OPS || 50000);
const SEED = Number(process.env.TORTURE_SEED || Math.floor(Math.random() * 1e9));
const HANG_MS = 15000;
const PID = process.pid;
const T = `torture_${PID}`;
const MARKER_RE = new RegExp(`tm${PID}s(\\d+)(?:g(\\d+))?`);

// === randomness (seeded, so a failing mix can be replayed with TORTURE_SEED) ===

let seedState = SEED >>> 0;
function rand() {
  seedState = (seedState + 0x6d2b79f5) >>> 0;
  let t = seedState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const chance = (p) => rand() < p;
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (arr) => arr[Math.floor(rand() * arr.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// === results ===

const checks = new Map(); // name -> { runs, fails, msgs: Map(key -> { count, example, who }) }
let totalOps = 0;
function entry(name) {
  if (!checks.has(name)) checks.set(name, { runs: 0, fails: 0, msgs: new Map() });
  return checks.get(name);
}
function pass(name) {
  entry(name).runs++;
}
function errText(e) {
  if (!(e instanceof Error)) return String(e);
  const extra = [e.errno ? `[${e.errno}]` : '', e.code && !e.errno ? `[${e.code}]` : ''].join('');
  return `${e.message.split('\n').join(' ')}${extra ? ` ${extra}` : ''}`;
}
function fail(name, e, who) {
  const c = entry(name);
  c.runs++;
  c.fails++;
  const text = errText(e);
  const key = text.replace(new RegExp(MARKER_RE.source, 'g'), '<m>').replace(/\d{3,}/g, 'N');
  const m = c.msgs.get(key);
  if (m) m.count++;
  else c.msgs.set(key, { count: 1, example: text, who });
}

// Where a value that should have been this session's marker came from.
function origin(v, s) {
  if (v === null || v === undefined) return 'NULL: session state lost';
  const mm = String(v).match(MARKER_RE);
  if (!mm) return 'not a marker of this run';
  if (Number(mm[1]) !== s.n) return `LEAK: data of session ${mm[1]}`;
  if (mm[2] !== undefined && Number(mm[2]) !== s.gen) return `own earlier connection g${mm[2]}`;
  return 'own marker, wrong value';
}
const short = (v) => {
  const str = typeof v === 'string' ? v : JSON.stringify(v);
  return str && str.length > 80 ? `${str.slice(0, 80)}...(${str.length} chars)` : str;
};
function expectOwn(got, want, s, what) {
  if (got !== want) {
    throw new Error(`${what}: got ${short(got)} (${origin(got, s)}), expected ${short(want)}`);
  }
}

class HangError extends Error {}
function withTimeout(p, ms, describe) {
  p.catch(() => {});
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`HANG: ${describe()} got no answer in ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// === sessions ===

class Session {
  constructor(n) {
    this.n = n;
    this.base = `tm${PID}s${n}`; // the session across its connections (rows in the shared table)
    this.gen = 0; // connection number; marker = base + g<gen>
    this.c = null;
    this.needReconnect = true;
    this.committed = 0; // own 'ac' rows committed in the shared table
    this.countOk = true; // false once a commit's outcome is unknown
    this.tmp = false; // tmp_x exists on the current connection
    this.tmpRows = 0;
    this.uservar = null; // value of @v on the current connection
    this.curVal = 1000 + n;
    this.step = '';
    this.ops = 0;
    this.left = 0; // operations left before this connection quits on its own
    this.extra = []; // side resources to destroy if an operation fails
    this.rawSeq = 0;
  }
  get marker() {
    return `${this.base}g${this.gen}`;
  }
}

// Statement helpers: record the step (for hang reports) and refuse to go on on a connection the
// session has abandoned (an operation that timed out must not touch the session's state later).
function guard(s, c) {
  if (s.c !== c) throw new Error('stale operation on an abandoned connection');
}
async function q(s, c, sql, params) {
  guard(s, c);
  s.step = `query ${sql.slice(0, 70)}`;
  const r = params === undefined ? await c.query(sql) : await c.query(sql, params);
  guard(s, c);
  return r;
}
async function x(s, c, sql, params) {
  guard(s, c);
  s.step = `execute ${sql.slice(0, 70)}`;
  const r = await c.execute(sql, params || []);
  guard(s, c);
  return r;
}
async function expectErrno(p, errno, what) {
  try {
    await p;
  } catch (e) {
    if (e.errno === errno) return;
    throw e;
  }
  throw new Error(`${what}: expected error ${errno}, got success`);
}

function destroyQuietly(c) {
  if (!c) return;
  try {
    c.destroy();
    c.connection.stream.destroy();
  } catch {
    // already gone
  }
}
// Leaves without a clean COM_QUIT (or with one, for 'end').
async function abandon(c, how) {
  if (how === 'end') {
    await withTimeout(c.end(), 5000, () => 'end()').catch(() => destroyQuietly(c));
  } else if (how === 'reset') {
    c.connection.stream.resetAndDestroy ? c.connection.stream.resetAndDestroy() : c.connection.stream.destroy();
  } else {
    c.destroy(); // mysql2: half-close, no COM_QUIT
  }
}

async function connect(s) {
  s.gen++;
  s.tmp = false;
  s.uservar = null;
  s.left = int(5, 40);
  s.step = 'connect';
  const c = await mysql.createConnection(cfg);
  c.on('error', () => {}); // fatal errors also reach the pending commands
  const who = `session ${s.n} g${s.gen}`;
  // mysql2 only warns (and goes on, misreading) when a packet's sequence id is wrong.
  c.connection.on('warn', (e) => fail('mysql2: packet sequence ids in order', e, who));
  s.c = c;
  s.needReconnect = false;
  const m = s.marker;
  // A new session must start clean: nothing left by whoever used a pooled connection before.
  const [[st]] = await q(s, c,
    'SELECT ? AS m, @v AS v, @@autocommit AS ac, DATABASE() AS db, @@in_transaction AS itx', [m]);
  expectOwn(st.m, m, s, 'marker of first query');
  if (st.v !== null) throw new Error(`new session sees @v = ${short(st.v)} (${origin(st.v, s)})`);
  assert.equal(st.ac, 1, 'new session has autocommit off');
  assert.equal(st.db, cfg.database, 'new session default database');
  assert.equal(st.itx, 0, 'new session is inside a transaction');
  await expectErrno(q(s, c, 'SELECT m FROM tmp_x LIMIT 1'), 1146, 'new session sees a temporary table tmp_x');
}

async function reconnect(s) {
  destroyQuietly(s.c);
  s.c = null;
  await connect(s);
}

// === operations: each gets the session and its current connection ===

// Several statements fired without awaiting (mysql2 queues them), then all awaited.
async function pipelined(s, c, mode) {
  const m = s.marker;
  const k = int(2, 8);
  const bad = chance(0.3) ? int(0, k - 1) : -1; // one statement failing in the middle
  const ps = [];
  for (let i = 0; i < k; i++) {
    const tag = `${m}#${i}`;
    const useExec = mode === 'execute' || (mode === 'mixed' && chance(0.5));
    const run = useExec ? x : q;
    if (i === bad) ps.push(run(s, c, 'SELECT ? AS marker FROM torture_no_such_table', [tag]).then(
      () => { throw new Error('no error from a missing table'); },
      (e) => { if (e.errno !== 1146) throw e; return null; }));
    else if (chance(0.5)) ps.push(run(s, c, 'SELECT ? AS marker, CONNECTION_ID() AS cid', [tag]));
    else ps.push(run(s, c, "SELECT CONCAT(?, '') AS marker, 1 AS one", [tag]));
  }
  const res = await Promise.all(ps);
  res.forEach((r, i) => {
    if (i === bad) return;
    const [rows] = r;
    assert.equal(rows.length, 1, `pipelined #${i}: ${rows.length} rows`);
    expectOwn(rows[0].marker, `${m}#${i}`, s, `pipelined #${i} of ${k}`);
  });
}

async function bigResult(s, c) {
  const m = s.marker;
  const run = chance(0.5) ? x : q;
  if (chance(0.5)) {
    const n = int(1000, 20000);
    const [rows] = await run(s, c, `SELECT seq, ? AS m FROM seq_1_to_${n}`, [m]);
    assert.equal(rows.length, n, 'row count of a large result');
    for (let i = 0; i < n; i++) {
      if (rows[i].m !== m || Number(rows[i].seq) !== i + 1) {
        throw new Error(`large result row ${i}: got ${short(rows[i])} (${origin(rows[i].m, s)})`);
      }
    }
  } else {
    const reps = int(1000, 30000);
    const [rows] = await run(s, c, 'SELECT REPEAT(?, ?) AS r, ? AS m', [m, reps, m]);
    assert.equal(rows.length, 1);
    expectOwn(rows[0].m, m, s, 'marker next to a long value');
    if (rows[0].r !== m.repeat(reps)) {
      throw new Error(`REPEAT(marker, ${reps}): wrong value ${short(rows[0].r)} (${origin(rows[0].r, s)})`);
    }
  }
}

// Streams a large result, checks the first rows, then drops the connection mid-result.
async function destroyMidResult(s, c) {
  const m = s.marker;
  const how = pick(['destroy', 'reset', 'end']);
  const sql = `SELECT seq, ? AS m, REPEAT('x', 300) AS pad FROM seq_1_to_200000`;
  guard(s, c);
  if (chance(0.25)) {
    // Nothing read at all: several large results queued, connection dropped at once.
    s.step = 'destroy with queued large results';
    for (let i = 0; i < 3; i++) {
      const cmd = chance(0.5) ? c.connection.execute(sql, [m]) : c.connection.query(sql, [m]);
      cmd.on('error', () => {});
    }
    await sleep(int(0, 5));
    await abandon(c, how === 'end' ? 'destroy' : how);
    s.needReconnect = true;
    return;
  }
  const stopAfter = int(1, 300);
  s.step = `stream ${stopAfter} rows then ${how}`;
  await new Promise((resolve, reject) => {
    let n = 0;
    let done = false;
    const cmd = chance(0.5) ? c.connection.execute(sql, [m]) : c.connection.query(sql, [m]);
    cmd.on('result', (row) => {
      if (done) return;
      n++;
      if (row.m !== m || Number(row.seq) !== n) {
        done = true;
        reject(new Error(`streamed row ${n}: got ${short(row)} (${origin(row.m, s)})`));
        return;
      }
      if (n >= stopAfter) {
        done = true;
        if (how === 'end') c.connection.stream.destroy(); // end() would wait for the whole result
        else abandon(c, how);
        resolve();
      }
    });
    cmd.on('error', (e) => {
      if (!done) {
        done = true;
        reject(e);
      }
    });
    cmd.on('end', () => {
      if (!done) {
        done = true;
        reject(new Error(`result ended after ${n} rows`));
      }
    });
  });
  s.needReconnect = true;
}

async function tempTable(s, c, via) {
  const m = s.marker;
  const run = via === 'execute' ? x : q;
  if (s.tmp) {
    // Left by an earlier operation of this connection: still there, still only ours.
    const [rows] = await run(s, c, 'SELECT m, COUNT(*) AS n FROM tmp_x GROUP BY m', []);
    if (rows.length !== 1 || rows[0].m !== m || rows[0].n !== s.tmpRows) {
      throw new Error(`kept tmp_x: got ${short(rows)} (${origin(rows[0] && rows[0].m, s)}), expected ${s.tmpRows} rows of own marker`);
    }
    await run(s, c, 'DROP TEMPORARY TABLE tmp_x', []);
    s.tmp = false;
  }
  try {
    await run(s, c, 'CREATE TEMPORARY TABLE tmp_x (m VARCHAR(64) NOT NULL, k INT NOT NULL)', []);
  } catch (e) {
    if (e.errno === 1050) {
      throw new Error(`CREATE TEMPORARY TABLE tmp_x: ${e.message}: another session's temporary table is visible [1050]`);
    }
    throw e;
  }
  s.tmp = true;
  s.tmpRows = 0;
  const k = int(1, 4);
  for (let i = 0; i < k; i++) {
    await run(s, c, 'INSERT INTO tmp_x (m, k) VALUES (?, ?)', [m, i]);
    s.tmpRows++;
    if (chance(0.3)) await pipelined(s, c, 'mixed');
  }
  const [rows] = await run(s, c, 'SELECT m, COUNT(*) AS n FROM tmp_x GROUP BY m', []);
  if (rows.length !== 1 || rows[0].m !== m || rows[0].n !== k) {
    throw new Error(`tmp_x read back: got ${short(rows)} (${origin(rows[0] && rows[0].m, s)}), expected ${k} rows of own marker`);
  }
  const r = rand();
  if (r < 0.4) {
    await run(s, c, 'DROP TEMPORARY TABLE tmp_x', []);
    s.tmp = false;
  } else if (r < 0.75) {
    await abandon(c, pick(['end', 'destroy', 'reset'])); // leave it and quit
    s.needReconnect = true;
  } // else keep it for later operations of this connection
}

async function userVar(s, c) {
  const val = `${s.marker}v${int(0, 1e6)}`;
  if (chance(0.5)) await q(s, c, 'SET @v = ?', [val]);
  else await x(s, c, 'SET @v = ?', [val]);
  s.uservar = val;
  if (chance(0.5)) await pipelined(s, c, 'mixed');
  const [[row]] = chance(0.5) ? await q(s, c, 'SELECT @v AS v') : await x(s, c, 'SELECT @v AS v');
  expectOwn(row.v, val, s, 'SELECT @v');
  if (chance(0.3)) {
    await abandon(c, pick(['end', 'destroy']));
    s.needReconnect = true;
  }
}

// Checks what this connection should still have: @v, tmp_x (or no tmp_x), committed rows.
async function checkState(s, c) {
  const run = chance(0.5) ? x : q;
  if (s.uservar !== null) {
    const [[row]] = await run(s, c, 'SELECT @v AS v', []);
    expectOwn(row.v, s.uservar, s, 'SELECT @v later');
  }
  if (s.tmp) {
    const [rows] = await run(s, c, 'SELECT m, COUNT(*) AS n FROM tmp_x GROUP BY m', []);
    if (rows.length !== 1 || rows[0].m !== s.marker || rows[0].n !== s.tmpRows) {
      throw new Error(`tmp_x later: got ${short(rows)} (${origin(rows[0] && rows[0].m, s)})`);
    }
  } else {
    await expectErrno(run(s, c, 'SELECT m FROM tmp_x LIMIT 1', []), 1146, 'session without tmp_x sees one');
  }
  // The rows may have been committed by an earlier connection of this session: read-your-writes
  // holds within one connection only, so this count asks the primary (a comment to a server).
  const [counts] = await run(s, c,
    `/* tandem:primary */ SELECT kind, COUNT(*) AS n FROM ${T} WHERE m = ? AND kind IN ('ac', 'abort') GROUP BY kind`, [s.base]);
  const got = Object.fromEntries(counts.map((r) => [r.kind, r.n]));
  if (got.abort) throw new Error(`${got.abort} rows of transactions abandoned before COMMIT are committed`);
  if (s.countOk && (got.ac || 0) !== s.committed) {
    throw new Error(`committed rows: ${got.ac || 0}, expected ${s.committed}`);
  }
}

async function autocommitTxn(s, c) {
  const run = chance(0.5) ? x : q;
  s.countOk = false;
  await q(s, c, `USE \`${cfg.database}\``);
  await q(s, c, 'SET autocommit=0');
  const k = int(1, 3);
  for (let i = 0; i < k; i++) await run(s, c, `INSERT INTO ${T} (m, kind, n) VALUES (?, 'ac', ?)`, [s.base, i]);
  if (chance(0.3)) await pipelined(s, c, 'mixed');
  const [[inside]] = await run(s, c, `SELECT COUNT(*) AS n FROM ${T} WHERE m = ? AND kind = 'ac'`, [s.base]);
  assert.equal(inside.n, s.committed + k, 'own uncommitted rows inside the transaction');
  const commit = chance(0.5);
  await q(s, c, commit ? 'COMMIT' : 'ROLLBACK');
  if (commit) s.committed += k;
  s.countOk = true;
  await q(s, c, 'SET autocommit=1');
  const [[after]] = await run(s, c, `SELECT COUNT(*) AS n FROM ${T} WHERE m = ? AND kind = 'ac'`, [s.base]);
  assert.equal(after.n, s.committed, `committed rows after ${commit ? 'COMMIT' : 'ROLLBACK'}`);
}

// BEGIN + inserts, then the client leaves mid-transaction: the rows must never be committed.
async function abandonTxn(s, c) {
  const run = chance(0.5) ? x : q;
  if (chance(0.5)) await q(s, c, 'BEGIN');
  else {
    s.step = 'beginTransaction';
    await c.beginTransaction();
  }
  const k = int(1, 3);
  for (let i = 0; i < k; i++) await run(s, c, `INSERT INTO ${T} (m, kind, n) VALUES (?, 'abort', ?)`, [s.base, i]);
  const [[inside]] = await run(s, c, `SELECT COUNT(*) AS n FROM ${T} WHERE m = ? AND kind = 'abort'`, [s.base]);
  assert.equal(inside.n, k, 'own uncommitted rows inside the transaction');
  await abandon(c, pick(['end', 'destroy', 'reset']));
  s.needReconnect = true;
}

async function cursor(s, c) {
  const m = s.marker;
  const fromTmp = s.tmp && chance(0.5);
  const src = fromTmp ? 'SELECT k FROM tmp_x ORDER BY k' : `SELECT n FROM ${T} WHERE m = '${s.base}' AND kind = 'cur'`;
  const want = fromTmp ? 0 : s.curVal;
  const sql = `BEGIN NOT ATOMIC DECLARE x INT DEFAULT NULL; DECLARE c1 CURSOR FOR ${src}; ` +
    `OPEN c1; FETCH c1 INTO x; CLOSE c1; SELECT x AS x, '${m}' AS m; END`;
  const [res] = await q(s, c, sql);
  const rows = Array.isArray(res[0]) ? res[0] : res;
  assert.ok(Array.isArray(rows) && rows.length === 1, `compound statement result: ${short(res)}`);
  expectOwn(rows[0].m, m, s, 'compound statement marker');
  assert.equal(rows[0].x, want, `cursor FETCH value (${fromTmp ? 'tmp_x' : 'shared table'})`);
  await pipelined(s, c, 'mixed'); // the connection is still in step
}

async function killQuery(s, c) {
  const m = s.marker;
  const id = c.connection.threadId;
  s.step = 'connect the killing connection';
  const k = await mysql.createConnection(cfg); // before the SLEEP holds a backend connection
  s.extra.push(k);
  k.on('error', () => {});
  const t0 = Date.now();
  const p = q(s, c, 'SELECT SLEEP(5) AS slept, ? AS m', [m]);
  p.catch(() => {});
  await sleep(300);
  s.step = `KILL QUERY ${id} from another connection`;
  await k.query(`KILL QUERY ${id}`);
  await k.end();
  s.step = 'killed SLEEP';
  try {
    const [rows] = await p;
    expectOwn(rows[0].m, m, s, 'killed SLEEP marker');
    if (Number(rows[0].slept) !== 1) {
      throw new Error(`KILL QUERY did not interrupt SLEEP(5): it returned ${rows[0].slept} after ${Date.now() - t0} ms`);
    }
  } catch (e) {
    if (e.errno !== 1317) throw e; // query execution was interrupted
  }
  await pipelined(s, c, 'mixed');
}

// === wire-level pipelining (mysql2 writes one command at a time; this really pipelines) ===

class Raw {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    this.err = null;
    sock.on('data', (d) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.pump();
    });
    sock.on('error', (e) => {
      this.err = this.err || e;
      this.pump();
    });
    sock.on('close', () => {
      this.err = this.err || new Error('raw: connection closed by the server');
      this.pump();
    });
  }
  pump() {
    while (this.waiters.length) {
      if (this.buf.length >= 4) {
        const len = this.buf.readUIntLE(0, 3);
        if (this.buf.length >= 4 + len) {
          const pkt = { seq: this.buf[3], body: this.buf.subarray(4, 4 + len) };
          this.buf = this.buf.subarray(4 + len);
          this.waiters.shift().resolve(pkt);
          continue;
        }
      }
      if (this.err) {
        this.waiters.shift().reject(this.err);
        continue;
      }
      break;
    }
  }
  read() {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.pump();
    });
  }
  static packet(seq, body) {
    const h = Buffer.alloc(4);
    h.writeUIntLE(body.length, 0, 3);
    h[3] = seq;
    return Buffer.concat([h, body]);
  }
  static query(sql) {
    return Raw.packet(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]));
  }
  destroy() {
    this.sock.destroy();
  }

  static async connect() {
    const sock = net.connect({ host: cfg.host, port: cfg.port });
    const r = new Raw(sock);
    const hs = (await r.read()).body;
    if (hs[0] === 0xff) throw new Error(`raw: handshake error ${hs.toString('utf8', 9)}`);
    let i = hs.indexOf(0, 1) + 1;
    r.threadId = hs.readUInt32LE(i);
    i += 4;
    const salt1 = hs.subarray(i, i + 8);
    i += 9;
    i += 2 + 1 + 2 + 2; // capabilities low, charset, status, capabilities high
    const authLen = hs[i];
    i += 1 + 10;
    const salt2 = hs.subarray(i, i + Math.max(13, authLen - 8) - 1);
    const salt = Buffer.concat([salt1, salt2]);
    const caps = 0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000;
    const head = Buffer.alloc(32);
    head.writeUInt32LE(caps, 0);
    head.writeUInt32LE(16 * 1024 * 1024, 4);
    head[8] = 45; // utf8mb4_general_ci
    const scramble = Raw.native(salt);
    r.sock.write(Raw.packet(1, Buffer.concat([head, Buffer.from(`${cfg.user}\0`), Buffer.from([scramble.length]),
      scramble, Buffer.from(`${cfg.database}\0mysql_native_password\0`)])));
    for (;;) {
      const p = await r.read();
      if (p.body[0] === 0x00) return r;
      if (p.body[0] === 0xff) throw new Error(`raw: login failed: ${p.body.toString('utf8', 9)}`);
      if (p.body[0] === 0xfe) {
        const z = p.body.indexOf(0, 1);
        const plugin = p.body.toString('latin1', 1, z);
        if (plugin !== 'mysql_native_password') throw new Error(`raw: unsupported auth switch to ${plugin}`);
        let data = p.body.subarray(z + 1);
        if (data.length && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
        r.sock.write(Raw.packet((p.seq + 1) & 0xff, Raw.native(data)));
        continue;
      }
      throw new Error(`raw: unexpected auth packet 0x${p.body[0].toString(16)}`);
    }
  }
  static native(salt) {
    if (!cfg.password) return Buffer.alloc(0);
    const sha1 = (b) => crypto.createHash('sha1').update(b).digest();
    const p1 = sha1(Buffer.from(cfg.password, 'utf8'));
    const p3 = sha1(Buffer.concat([salt, sha1(p1)]));
    return Buffer.from(p1.map((b, j) => b ^ p3[j]));
  }

  // One text-protocol answer; sequence ids must run 1, 2, 3... as in mysql2's check.
  async result(what) {
    let expect = 1;
    const next = async () => {
      const p = await this.read();
      if (p.seq !== (expect & 0xff)) {
        throw new Error(`raw: packets out of order: expected ${expect & 0xff}, received ${p.seq} (${what})`);
      }
      expect++;
      return p.body;
    };
    const lenenc = (b, o) => {
      const f = b[o];
      if (f < 0xfb) return [f, o + 1];
      if (f === 0xfc) return [b.readUInt16LE(o + 1), o + 3];
      if (f === 0xfd) return [b.readUIntLE(o + 1, 3), o + 4];
      return [Number(b.readBigUInt64LE(o + 1)), o + 9];
    };
    let b = await next();
    if (b[0] === 0xff) return { errno: b.readUInt16LE(1), message: b.toString('utf8', 9) };
    if (b[0] === 0x00) return { rows: [] };
    const [ncol] = lenenc(b, 0);
    for (let i = 0; i < ncol; i++) await next();
    b = await next();
    if (b[0] !== 0xfe) throw new Error(`raw: no EOF after column definitions (${what})`);
    const rows = [];
    for (;;) {
      b = await next();
      if (b[0] === 0xfe && b.length < 9) break;
      if (b[0] === 0xff) return { errno: b.readUInt16LE(1), message: b.toString('utf8', 9) };
      const row = [];
      let o = 0;
      for (let i = 0; i < ncol; i++) {
        if (b[o] === 0xfb) {
          row.push(null);
          o++;
          continue;
        }
        let len;
        [len, o] = lenenc(b, o);
        row.push(b.toString('utf8', o, o + len));
        o += len;
      }
      rows.push(row);
    }
    if (b.readUInt16LE(3) & 0x0008) throw new Error(`raw: unexpected further result (${what})`);
    return { rows };
  }
}

async function rawPipeline(s) {
  s.step = 'raw connect';
  const r = await Raw.connect();
  s.extra.push(r);
  const k = int(2, 10);
  const items = [];
  for (let i = 0; i < k; i++) {
    const tag = `${s.base}r${++s.rawSeq}`;
    const kind = pick(['one', 'many', 'error']);
    const sql = kind === 'one' ? `SELECT '${tag}' AS m`
      : kind === 'many' ? `SELECT '${tag}' AS m, seq FROM seq_1_to_${int(2, 500)}`
        : `SELECT '${tag}' AS m FROM torture_no_such_table`;
    items.push({ tag, kind, sql });
  }
  s.step = `raw pipeline of ${k}`;
  r.sock.write(Buffer.concat(items.map((it) => Raw.query(it.sql))));
  for (const [i, it] of items.entries()) {
    const res = await r.result(`pipelined #${i}: ${it.sql.slice(0, 40)}`);
    if (it.kind === 'error') {
      if (res.errno !== 1146) throw new Error(`raw pipelined #${i}: expected error 1146, got ${short(res)}`);
      continue;
    }
    if (res.errno) throw new Error(`raw pipelined #${i}: error ${res.errno} ${res.message}`);
    const want = it.kind === 'one' ? 1 : Number(it.sql.match(/seq_1_to_(\d+)/)[1]);
    if (res.rows.length !== want || res.rows.some((row) => row[0] !== it.tag)) {
      const bad = res.rows.find((row) => row[0] !== it.tag);
      throw new Error(`raw pipelined #${i}: ${res.rows.length} rows (want ${want}), first foreign ${short(bad)} (${origin(bad && bad[0], s)})`);
    }
  }
  if (chance(0.3)) {
    // Pipelined large results, connection closed after the first packet: no COM_QUIT.
    s.step = 'raw pipeline then close';
    r.sock.write(Buffer.concat([1, 2, 3].map(() => Raw.query(`SELECT '${s.base}' AS m, seq, REPEAT('y', 200) FROM seq_1_to_100000`))));
    await r.read();
    if (chance(0.5)) r.sock.resetAndDestroy ? r.sock.resetAndDestroy() : r.destroy();
    else r.sock.end();
  } else {
    r.sock.end(Raw.packet(0, Buffer.from([0x01]))); // COM_QUIT
  }
}

const ALL_OPS = [
  ['pipelined query()', 3, (s, c) => pipelined(s, c, 'query')],
  ['pipelined execute()', 3, (s, c) => pipelined(s, c, 'execute')],
  ['pipelined query()+execute()', 2, (s, c) => pipelined(s, c, 'mixed')],
  ['large result', 2, bigResult],
  ['destroy mid-result', 1.5, destroyMidResult],
  ['temporary table via query()', 1, (s, c) => tempTable(s, c, 'query')],
  ['temporary table via execute()', 1, (s, c) => tempTable(s, c, 'execute')],
  ['user variable', 1.5, userVar],
  ['session state still own', 2, checkState],
  ['USE + autocommit=0 + COMMIT/ROLLBACK', 1.5, autocommitTxn],
  ['BEGIN + insert, then quit mid-transaction', 1, abandonTxn],
  ['compound statement with cursor', 1, cursor],
  ['KILL QUERY own query', 0.15, killQuery],
  ['wire-level pipelining (raw protocol)', 1, (s) => rawPipeline(s)],
];
// TORTURE_OPS: comma-separated substrings of operation names to run only those (for triage).
const ONLY = (process.env.TORTURE_OPS || '').split(',').map((w) => w.trim()).filter(Boolean);
const OPS = ONLY.length ? ALL_OPS.filter(([name]) => ONLY.some((w) => name.includes(w))) : ALL_OPS;
if (!OPS.length) {
  console.error(`TORTURE_OPS matches no operation: ${ALL_OPS.map((o) => o[0]).join(' | ')}`);
  process.exit(2);
}
const WEIGHT = OPS.reduce((a, o) => a + o[1], 0);
function pickOp() {
  let r = rand() * WEIGHT;
  for (const op of OPS) {
    r -= op[1];
    if (r < 0) return op;
  }
  return OPS[0];
}

async function sessionLoop(s, deadline) {
  while (Date.now() < deadline && s.ops < MAX_OPS) {
    if (s.needReconnect || !s.c) {
      try {
        await withTimeout(reconnect(s), HANG_MS, () => `session ${s.n} connect at step "${s.step}"`);
        pass('new connection: clean session state');
      } catch (e) {
        fail('new connection: clean session state', e, `session ${s.n} g${s.gen}`);
        destroyQuietly(s.c);
        s.c = null;
        s.needReconnect = true;
        await sleep(200);
      }
      continue;
    }
    const [name, , fn] = pickOp();
    const c = s.c;
    s.ops++;
    totalOps++;
    s.step = 'start';
    try {
      await withTimeout(fn(s, c), HANG_MS, () => `session ${s.n} "${name}" at step "${s.step}"`);
      pass(name);
    } catch (e) {
      if (e instanceof HangError) s.countOk = false;
      fail(name, e, `session ${s.n} g${s.gen}`);
      destroyQuietly(c);
      s.c = null;
      s.needReconnect = true;
    }
    for (const r of s.extra.splice(0)) {
      try {
        r.destroy();
      } catch {
        // gone
      }
    }
    if (!s.needReconnect && --s.left <= 0) {
      await abandon(c, pick(['end', 'end', 'destroy']));
      s.needReconnect = true;
    }
  }
  if (s.c && !s.needReconnect) await abandon(s.c, 'end');
  destroyQuietly(s.c);
  s.c = null;
}

// === main ===

async function admin(fn) {
  const c = await withTimeout(mysql.createConnection(cfg), HANG_MS, () => 'admin connect');
  c.on('error', () => {});
  try {
    return await fn(c);
  } finally {
    await withTimeout(c.end(), 5000, () => 'admin end').catch(() => destroyQuietly(c));
  }
}

async function main() {
  const watchdogSec = SECONDS + 120;
  const watchdog = setTimeout(() => {
    console.log(`not ok - watchdog: torture still running ${watchdogSec} s after start (teardown hung?)`);
    report(sessions);
    process.exit(1);
  }, watchdogSec * 1000);

  const sessions = Array.from({ length: SESSIONS }, (_, i) => new Session(i + 1));
  const setupOk = await admin(async (c) => {
    await c.query(`DROP TABLE IF EXISTS ${T}`);
    await c.query(`CREATE TABLE ${T} (id INT AUTO_INCREMENT PRIMARY KEY, m VARCHAR(64) NOT NULL,
      kind VARCHAR(8) NOT NULL, n INT NOT NULL, KEY (m, kind)) ENGINE=InnoDB`);
    await c.query(`INSERT INTO ${T} (m, kind, n) VALUES ?`, [sessions.map((s) => [s.base, 'cur', s.curVal])]);
    return true;
  }).catch((e) => {
    fail('setup', e, 'setup');
    return false;
  });

  if (setupOk) {
    const deadline = Date.now() + SECONDS * 1000;
    await Promise.all(sessions.map((s) => sessionLoop(s, deadline)));

    await admin(async (c) => {
      const step = (sql, params) => withTimeout(c.query(sql, params), HANG_MS, () => `final ${sql.slice(0, 60)}`);
      try {
        const [ab] = await step(`SELECT m, COUNT(*) AS n FROM ${T} WHERE kind = 'abort' GROUP BY m`);
        if (ab.length) throw new Error(`rows of abandoned transactions were committed: ${short(ab)}`);
        pass('final: abandoned transactions never committed');
      } catch (e) {
        fail('final: abandoned transactions never committed', e, 'final');
      }
      try {
        const [rows] = await step(`SELECT m, COUNT(*) AS n FROM ${T} WHERE kind = 'ac' GROUP BY m`);
        const got = Object.fromEntries(rows.map((r) => [r.m, r.n]));
        const bad = sessions.filter((s) => s.countOk && (got[s.base] || 0) !== s.committed)
          .map((s) => `session ${s.n}: ${got[s.base] || 0} committed rows, expected ${s.committed}`);
        if (bad.length) throw new Error(bad.join('; '));
        pass('final: committed rows per session');
      } catch (e) {
        fail('final: committed rows per session', e, 'final');
      }
      try {
        await step('SET SESSION lock_wait_timeout = 10');
        await step(`DROP TABLE ${T}`);
        pass('drop table');
      } catch (e) {
        const why = e.errno === 1205 ? ' (a backend connection still holds an open transaction on it)' : '';
        fail('drop table', new Error(`${errText(e)}${why}`), 'final');
      }
    }).catch((e) => fail('teardown', e, 'teardown'));
  }
  clearTimeout(watchdog);
  report(sessions);
}

function report(sessions) {
  let failures = 0;
  if (!checks.has('mysql2: packet sequence ids in order')) pass('mysql2: packet sequence ids in order');
  for (const [name, c] of checks) {
    if (!c.fails) {
      console.log(`ok - ${name} (${c.runs} runs)`);
      continue;
    }
    let shown = 0;
    for (const m of c.msgs.values()) {
      failures += m.count;
      if (++shown <= 6) console.log(`not ok - ${name}: ${m.example} (${m.count} of ${c.runs} runs; first: ${m.who})`);
    }
    if (shown > 6) console.log(`not ok - ${name}: ... and ${shown - 6} more distinct messages`);
  }
  console.log(`torture: ${totalOps} operations, ${sessions.length} sessions, ${SECONDS} s, seed ${SEED}, ${failures} failures`);
  process.exitCode = failures === 0 ? 0 : 1;
}

process.on('unhandledRejection', (e) => fail('unhandled rejection', e, 'process'));
process.on('uncaughtException', (e) => fail('uncaught exception', e, 'process'));

main()
  .catch((e) => {
    console.log(`not ok - unexpected: ${e.stack}`);
    process.exitCode = 1;
  })
  .finally(() => setTimeout(() => process.exit(process.exitCode), 200).unref());
