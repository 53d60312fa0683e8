#!/usr/bin/env php
<?php
// mysqli (mysqlnd) against a MySQL endpoint: the testbed primary directly, or tandem.
// Target from the environment: TANDEM_HOST, TANDEM_PORT (required), TANDEM_USER, TANDEM_PASSWORD,
// TANDEM_DB (default appdb). Prints "ok - name" / "not ok - name: detail"; exits 1 if any failed.
// Tables are named php_mysqli_<pid>_*, so concurrent runs (direct and proxied) do not collide.

declare(strict_types=1);

$host = getenv('TANDEM_HOST') ?: '127.0.0.1';
$port = (int) (getenv('TANDEM_PORT') ?: 0);
$user = getenv('TANDEM_USER') ?: 'app';
$pass = getenv('TANDEM_PASSWORD') !== false ? getenv('TANDEM_PASSWORD') : 'apppass';
$db = getenv('TANDEM_DB') ?: 'appdb';
if ($port === 0) {
    fwrite(STDERR, "TANDEM_PORT is not set\n");
    exit(2);
}

$passed = 0;
$failed = 0;
function check(string $name, callable $fn): void
{
    global $passed, $failed;
    try {
        $detail = $fn();
        if ($detail === true || $detail === null) {
            echo "ok - $name\n";
            $passed++;
            return;
        }
        echo "not ok - $name: $detail\n";
    } catch (Throwable $e) {
        echo "not ok - $name: " . get_class($e) . " [" . $e->getCode() . "] " . $e->getMessage() . "\n";
    }
    $failed++;
}
function expect($got, $want, string $what = 'value')
{
    return $got === $want ? true : "$what: got " . var_export($got, true) . ", want " . var_export($want, true);
}
// $size bytes that deflate well, with some incompressible stretches.
function compressible(int $size): string
{
    $out = '';
    while (strlen($out) < $size) {
        $out .= str_repeat('tandem compresses this text; ', 2000) . random_bytes(2048);
    }
    return substr($out, 0, $size);
}
function expect_error(mysqli $c, string $sql, int $code)
{
    try {
        $c->query($sql);
    } catch (mysqli_sql_exception $e) {
        return expect($e->getCode(), $code, 'error code (' . $e->getMessage() . ')');
    }
    return "no error for: $sql";
}

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
// The compressed checks hold 20 MiB values several times over.
ini_set('memory_limit', '1G');

function connect(int $flags = 0): mysqli
{
    global $host, $port, $user, $pass, $db;
    $c = mysqli_init();
    $c->options(MYSQLI_OPT_LOCAL_INFILE, true);
    // PHP >= 8.1 also wants the directory LOCAL files may come from (mysqli.allow_local_infile is off).
    $c->options(MYSQLI_OPT_LOAD_DATA_LOCAL_DIR, sys_get_temp_dir());
    // Text-protocol results typed from the column definitions, as the binary protocol is.
    $c->options(MYSQLI_OPT_INT_AND_FLOAT_NATIVE, true);
    $c->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);
    $c->real_connect($host, $user, $pass, $db, $port, null, $flags);
    $c->set_charset('utf8mb4');
    return $c;
}

$t = 'php_mysqli_' . getmypid();
$c = null;
check('connect', function () use (&$c) {
    $c = connect();
    return expect($c->query('SELECT 1 AS one')->fetch_assoc()['one'], 1, 'SELECT 1');
});
if ($c === null) {
    echo "mysqli: $passed passed, $failed failed\n";
    exit(1);
}

check('server version and database', function () use ($c, $db) {
    $row = $c->query('SELECT VERSION() AS v, DATABASE() AS d')->fetch_assoc();
    if ($c->server_info === '' || $row['v'] === '') {
        return 'empty server version';
    }
    return expect($row['d'], $db, 'DATABASE()');
});

check('create table', function () use ($c, $t) {
    $c->query("DROP TABLE IF EXISTS $t");
    $c->query("CREATE TABLE $t (
        id INT AUTO_INCREMENT PRIMARY KEY,
        i INT NULL, f DOUBLE NULL, s VARCHAR(100) NULL, n VARCHAR(10) NULL, b BLOB NULL,
        UNIQUE KEY uq_s (s)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    return expect($c->query("SELECT COUNT(*) AS n FROM $t")->fetch_assoc()['n'], 0, 'rows');
});

$blob = "\x00\x01binary\xff\xfe\x00end";
check('prepared insert int/float/string/null/blob', function () use ($c, $t, $blob) {
    $st = $c->prepare("INSERT INTO $t (i, f, s, n, b) VALUES (?, ?, ?, ?, ?)");
    $i = 42;
    $f = 3.5;
    $s = 'hello';
    $n = null;
    $b = null;
    $st->bind_param('idssb', $i, $f, $s, $n, $b);
    $st->send_long_data(4, $blob); // COM_STMT_SEND_LONG_DATA
    $st->execute();
    if (($r = expect($st->affected_rows, 1, 'affected_rows')) !== true) {
        return $r;
    }
    if ($st->insert_id < 1) {
        return "insert_id {$st->insert_id}";
    }
    // Re-execute the same statement with new values.
    $i = -7;
    $f = -0.25;
    $s = 'second';
    $b = 'small blob';
    $st->bind_param('idsss', $i, $f, $s, $n, $b);
    $st->execute();
    $id2 = $st->insert_id;
    $st->close();
    return expect($id2 > 1, true, 'second insert_id > 1');
});

check('prepared select with bound param (get_result)', function () use ($c, $t, $blob) {
    $st = $c->prepare("SELECT i, f, s, n, b FROM $t WHERE s = ?");
    $s = 'hello';
    $st->bind_param('s', $s);
    $st->execute();
    $row = $st->get_result()->fetch_assoc();
    $st->close();
    foreach ([['i', 42], ['f', 3.5], ['s', 'hello'], ['n', null], ['b', $blob]] as [$k, $v]) {
        if (($r = expect($row[$k], $v, "column $k")) !== true) {
            return $r;
        }
    }
    return true;
});

check('prepared select (bind_result)', function () use ($c, $t) {
    $st = $c->prepare("SELECT i, s FROM $t WHERE i < ? ORDER BY id");
    $lim = 0;
    $st->bind_param('i', $lim);
    $st->execute();
    $st->bind_result($i, $s);
    $rows = [];
    while ($st->fetch()) {
        $rows[] = [$i, $s];
    }
    $st->close();
    return expect($rows, [[-7, 'second']], 'rows');
});

check('text protocol fetch', function () use ($c, $t) {
    $res = $c->query("SELECT id, s FROM $t ORDER BY id");
    return expect($res->num_rows, 2, 'num_rows');
});

check('insert id and affected rows (text protocol)', function () use ($c, $t) {
    $c->query("INSERT INTO $t (i, s) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    if (($r = expect($c->affected_rows, 3, 'insert affected_rows')) !== true) {
        return $r;
    }
    $first = $c->insert_id; // first id of a multi-row insert
    $last = (int) $c->query('SELECT LAST_INSERT_ID() AS l')->fetch_assoc()['l'];
    if (($r = expect($last, $first, 'LAST_INSERT_ID()')) !== true) {
        return $r;
    }
    $c->query("UPDATE $t SET f = 1.0 WHERE s IN ('a', 'b', 'c')");
    if (($r = expect($c->affected_rows, 3, 'update affected_rows')) !== true) {
        return $r;
    }
    $c->query("UPDATE $t SET f = 1.0 WHERE s IN ('a', 'b', 'c')");
    return expect($c->affected_rows, 0, 'unchanged update affected_rows');
});

check('transaction rollback', function () use ($c, $t) {
    $c->begin_transaction();
    $c->query("INSERT INTO $t (i, s) VALUES (100, 'rolled-back')");
    $seen = $c->query("SELECT COUNT(*) AS n FROM $t WHERE s = 'rolled-back'")->fetch_assoc()['n'];
    $c->rollback();
    $after = $c->query("SELECT COUNT(*) AS n FROM $t WHERE s = 'rolled-back'")->fetch_assoc()['n'];
    return expect([$seen, $after], [1, 0], '[inside, after rollback]');
});

check('transaction commit visible to another connection', function () use ($c, $t) {
    $c->autocommit(false);
    $c->query("INSERT INTO $t (i, s) VALUES (101, 'committed')");
    $c->commit();
    $c->autocommit(true);
    $c2 = connect();
    $n = $c2->query("SELECT COUNT(*) AS n FROM $t WHERE s = 'committed'")->fetch_assoc()['n'];
    $c2->close();
    return expect($n, 1, 'rows seen by second connection');
});

check('multi_query with several result sets', function () use ($c, $t) {
    $c->multi_query("SELECT 1 AS a; SELECT 2 AS b, 3 AS c; UPDATE $t SET i = i WHERE 1 = 0; SELECT COUNT(*) AS n FROM $t");
    $sets = [];
    do {
        if ($res = $c->store_result()) {
            $sets[] = $res->fetch_all(MYSQLI_NUM);
            $res->free();
        } else {
            $sets[] = 'ok:' . $c->affected_rows;
        }
    } while ($c->more_results() && $c->next_result());
    $want = [[[1]], [[2, 3]], 'ok:0', [[6]]];
    return expect($sets, $want, 'result sets');
});

check('connection usable after multi_query', function () use ($c) {
    return expect($c->query('SELECT 5 AS x')->fetch_assoc()['x'], 5, 'SELECT 5');
});

check('LOAD DATA LOCAL INFILE', function () use ($c, $t) {
    $file = tempnam(sys_get_temp_dir(), 'tandem-php-');
    $lines = '';
    for ($k = 1; $k <= 250; $k++) {
        $lines .= "$k\tload-$k\t" . ($k % 2 ? "é😀" : "\\N") . "\n";
    }
    file_put_contents($file, $lines);
    try {
        $c->query("LOAD DATA LOCAL INFILE '" . $c->real_escape_string($file) . "' INTO TABLE $t
            CHARACTER SET utf8mb4 (i, s, n)");
        $affected = $c->affected_rows;
    } finally {
        unlink($file);
    }
    $row = $c->query("SELECT COUNT(*) AS n, SUM(n IS NULL) AS nulls, MAX(n) AS m FROM $t WHERE s LIKE 'load-%'")->fetch_assoc();
    return expect([$affected, $row['n'], (int) $row['nulls'], $row['m']], [250, 250, 125, "é😀"], '[affected, rows, nulls, text]');
});

check('error 1062 duplicate key', fn () => expect_error($c, "INSERT INTO $t (s) VALUES ('hello')", 1062));
check('error 1064 syntax', fn () => expect_error($c, 'SELEC 1', 1064));
check('error 1146 unknown table', fn () => expect_error($c, 'SELECT * FROM php_no_such_table_' . getmypid(), 1146));
check('prepare error surfaces code', function () use ($c) {
    try {
        $c->prepare('SELECT * FROM php_no_such_table_' . getmypid() . ' WHERE id = ?');
    } catch (mysqli_sql_exception $e) {
        return expect($e->getCode(), 1146, 'error code');
    }
    return 'prepare succeeded';
});
check('connection usable after errors', function () use ($c) {
    return expect($c->query('SELECT 6 AS x')->fetch_assoc()['x'], 6, 'SELECT 6');
});

check('utf8mb4 emoji round-trip', function () use ($c, $t) {
    $text = "emoji 😀🎉🦀 ü 日本";
    $st = $c->prepare("INSERT INTO $t (s) VALUES (?)");
    $st->bind_param('s', $text);
    $st->execute();
    $id = $st->insert_id;
    $st->close();
    $c->query("INSERT INTO $t (s) VALUES ('" . $c->real_escape_string("text $text") . "')");
    $rows = $c->query("SELECT s, CHAR_LENGTH(s) AS cl FROM $t WHERE id >= $id ORDER BY id")->fetch_all(MYSQLI_ASSOC);
    $seed = $c->query('SELECT title FROM posts WHERE id = 1')->fetch_assoc()['title'];
    return expect(
        [$rows[0]['s'], (int) $rows[0]['cl'], $rows[1]['s'], $seed],
        [$text, preg_match_all('/./us', $text), "text $text", 'Hello world 👋'],
        '[prepared, char_length, text, seed]'
    );
});

check('drop table', function () use ($c, $t) {
    $c->query("DROP TABLE $t");
    return true;
});
$c->close();

// The compressed protocol: mysqlnd frames every packet once it asked for
// CLIENT_COMPRESS. Payloads from one frame up to several (a 16 MiB packet
// spans frames; 20 MiB is a two-packet statement and row).
$z = null;
check('compressed: connect and query', function () use (&$z) {
    $z = connect(MYSQLI_CLIENT_COMPRESS);
    return expect($z->query('SELECT 1 + 1 AS two')->fetch_assoc()['two'], 2, 'SELECT 1 + 1');
});
if ($z !== null) {
    check('compressed: ordinary queries', function () use ($z) {
        $rows = $z->query('SELECT id, title FROM posts ORDER BY id LIMIT 2')->fetch_all(MYSQLI_NUM);
        $n = $z->query('SELECT COUNT(*) AS n FROM users')->fetch_assoc()['n'];
        $z->query('SET @tandem_z = 7');
        $v = $z->query('SELECT @tandem_z AS v')->fetch_assoc()['v'];
        return expect([$rows[0][1], $n, $v], ['Hello world 👋', 20, 7], '[title, users, variable]');
    });
    check('compressed: prepared statement', function () use ($z) {
        $st = $z->prepare('SELECT title FROM posts WHERE id = ?');
        $got = [];
        foreach ([1, 2] as $id) {
            $st->bind_param('i', $id);
            $st->execute();
            $got[] = $st->get_result()->fetch_row()[0] !== null;
        }
        $st->close();
        return expect($got, [true, true], 'rows found');
    });
    check('compressed: errors', fn () => expect_error($z, 'SELEC 1', 1064));
    $zt = "{$t}_z";
    check('compressed: multi_query and LOAD DATA LOCAL INFILE', function () use ($z, $zt) {
        $z->query("CREATE TABLE $zt (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB");
        $file = tempnam(sys_get_temp_dir(), 'tandem-php-z-');
        file_put_contents($file, implode('', array_map(fn ($k) => "$k\tline $k\n", range(1, 300))));
        try {
            $z->query("LOAD DATA LOCAL INFILE '" . $z->real_escape_string($file) . "' INTO TABLE $zt (id, b)");
        } finally {
            unlink($file);
        }
        $z->multi_query("SELECT COUNT(*) FROM $zt; SELECT b FROM $zt WHERE id = 300; DELETE FROM $zt");
        $sets = [];
        do {
            if ($res = $z->store_result()) {
                $sets[] = $res->fetch_all(MYSQLI_NUM);
                $res->free();
            } else {
                $sets[] = 'ok:' . $z->affected_rows;
            }
        } while ($z->more_results() && $z->next_result());
        return expect($sets, [[[300]], [['line 300']], 'ok:300'], 'result sets');
    });
    foreach ([16 << 10, 64 << 10, 1 << 20, 16 << 20, 20 << 20] as $size) {
        check("compressed: $size bytes REPLACE and SELECT back", function () use ($z, $zt, $size) {
            $data = compressible($size);
            $want = [$size, md5($data)];
            $z->query("REPLACE INTO $zt VALUES (1, '" . $z->real_escape_string($data) . "')");
            $row = $z->query("SELECT LENGTH(b) AS n, MD5(b) AS m, b FROM $zt WHERE id = 1")->fetch_assoc();
            $text = [[$row['n'], $row['m']], [strlen($row['b']), md5($row['b'])]];
            unset($row);
            $st = $z->prepare("REPLACE INTO $zt VALUES (2, ?)");
            $st->bind_param('s', $data);
            $st->execute();
            $st->close();
            $st = $z->prepare("SELECT b FROM $zt WHERE id = ?");
            $id = 2;
            $st->bind_param('i', $id);
            $st->execute();
            $b = $st->get_result()->fetch_row()[0];
            $st->close();
            return expect([$text[0], $text[1], [strlen($b), md5($b)]], [$want, $want, $want], '[server, text, binary] [length, md5]');
        });
    }
    check('compressed: connection usable after large packets', function () use ($z, $zt) {
        $z->query("DROP TABLE $zt");
        return expect($z->query('SELECT 6 AS x')->fetch_assoc()['x'], 6, 'SELECT 6');
    });
    $z->close();
}

echo "mysqli: $passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
