#!/usr/bin/env php
<?php
// PDO_MySQL (mysqlnd) against a MySQL endpoint: the testbed primary directly, or tandem.
// Target from the environment: TANDEM_HOST, TANDEM_PORT (required), TANDEM_USER, TANDEM_PASSWORD,
// TANDEM_DB (default appdb). Prints "ok - name" / "not ok - name: detail"; exits 1 if any failed.
// Tables are named php_pdo_<pid>, so concurrent runs (direct and proxied) do not collide.

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
        $info = $e instanceof PDOException && is_array($e->errorInfo) ? ' errorInfo=' . json_encode($e->errorInfo) : '';
        echo "not ok - $name: " . get_class($e) . " " . $e->getMessage() . "$info\n";
    }
    $failed++;
}
function expect($got, $want, string $what = 'value')
{
    return $got === $want ? true : "$what: got " . var_export($got, true) . ", want " . var_export($want, true);
}
// The MySQL error number is errorInfo[1]; getCode() is the SQLSTATE.
function expect_error(PDO $c, string $sql, int $code, ?array $params = null)
{
    try {
        if ($params === null) {
            $c->query($sql);
        } else {
            $c->prepare($sql)->execute($params);
        }
    } catch (PDOException $e) {
        return expect($e->errorInfo[1] ?? null, $code, 'error code (' . $e->getMessage() . ')');
    }
    return "no error for: $sql";
}

function connect(bool $emulate = false, array $extra = []): PDO
{
    global $host, $port, $user, $pass, $db;
    return new PDO("mysql:host=$host;port=$port;dbname=$db;charset=utf8mb4", $user, $pass, $extra + [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => $emulate, // false: server-side COM_STMT_PREPARE/EXECUTE
        PDO::ATTR_STRINGIFY_FETCHES => false,
        PDO::ATTR_TIMEOUT => 10,
        PDO::MYSQL_ATTR_LOCAL_INFILE => true,
    ]);
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
// The compressed checks hold 20 MiB values several times over.
ini_set('memory_limit', '1G');

$t = 'php_pdo_' . getmypid();
$c = null;
check('connect', function () use (&$c) {
    $c = connect();
    return expect((int) $c->query('SELECT 1')->fetchColumn(), 1, 'SELECT 1');
});
if ($c === null) {
    echo "pdo: $passed passed, $failed failed\n";
    exit(1);
}

check('create table', function () use ($c, $t) {
    $c->exec("DROP TABLE IF EXISTS $t");
    $c->exec("CREATE TABLE $t (
        id INT AUTO_INCREMENT PRIMARY KEY,
        i INT NULL, f DOUBLE NULL, s VARCHAR(100) NULL, n VARCHAR(10) NULL, b BLOB NULL,
        UNIQUE KEY uq_s (s)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
    return expect((int) $c->query("SELECT COUNT(*) FROM $t")->fetchColumn(), 0, 'rows');
});

$blob = "\x00\x01binary\xff\xfe\x00end";
check('prepared insert int/float/string/null/blob', function () use ($c, $t, $blob) {
    $st = $c->prepare("INSERT INTO $t (i, f, s, n, b) VALUES (:i, :f, :s, :n, :b)");
    $st->bindValue(':i', 42, PDO::PARAM_INT);
    $st->bindValue(':f', '3.5', PDO::PARAM_STR);
    $st->bindValue(':s', 'hello', PDO::PARAM_STR);
    $st->bindValue(':n', null, PDO::PARAM_NULL);
    $st->bindValue(':b', $blob, PDO::PARAM_LOB);
    $st->execute();
    if (($r = expect($st->rowCount(), 1, 'rowCount')) !== true) {
        return $r;
    }
    $id1 = (int) $c->lastInsertId();
    $st->execute([':i' => -7, ':f' => -0.25, ':s' => 'second', ':n' => null, ':b' => 'small blob']);
    $id2 = (int) $c->lastInsertId();
    return expect([$id1 >= 1, $id2 > $id1], [true, true], '[id1 >= 1, id2 > id1]');
});

check('prepared select with bound param', function () use ($c, $t, $blob) {
    $st = $c->prepare("SELECT i, f, s, n, b FROM $t WHERE s = ?");
    $st->execute(['hello']);
    $row = $st->fetch(PDO::FETCH_ASSOC);
    foreach ([['i', 42], ['f', 3.5], ['s', 'hello'], ['n', null], ['b', $blob]] as [$k, $v]) {
        if (($r = expect($row[$k], $v, "column $k")) !== true) {
            return $r;
        }
    }
    return true;
});

check('prepared statement re-executed', function () use ($c, $t) {
    $st = $c->prepare("SELECT s FROM $t WHERE i = ?");
    $got = [];
    foreach ([42, -7, 999] as $i) {
        $st->execute([$i]);
        $got[] = $st->fetchAll(PDO::FETCH_COLUMN);
    }
    return expect($got, [['hello'], ['second'], []], 'results');
});

check('emulated prepares', function () use ($t) {
    $e = connect(true);
    $st = $e->prepare("SELECT COUNT(*) FROM $t WHERE i > ? AND s <> ?");
    $st->execute([0, 'x']);
    return expect((int) $st->fetchColumn(), 1, 'count');
});

check('insert id and affected rows', function () use ($c, $t) {
    $n = $c->exec("INSERT INTO $t (i, s) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    if (($r = expect($n, 3, 'insert rows')) !== true) {
        return $r;
    }
    $first = (int) $c->lastInsertId();
    $last = (int) $c->query('SELECT LAST_INSERT_ID()')->fetchColumn();
    if (($r = expect($last, $first, 'LAST_INSERT_ID()')) !== true) {
        return $r;
    }
    $st = $c->prepare("UPDATE $t SET f = ? WHERE s IN ('a', 'b', 'c')");
    $st->execute([1.5]);
    return expect($st->rowCount(), 3, 'update rowCount');
});

check('transaction rollback', function () use ($c, $t) {
    $c->beginTransaction();
    $c->exec("INSERT INTO $t (i, s) VALUES (100, 'rolled-back')");
    $seen = (int) $c->query("SELECT COUNT(*) FROM $t WHERE s = 'rolled-back'")->fetchColumn();
    $c->rollBack();
    $after = (int) $c->query("SELECT COUNT(*) FROM $t WHERE s = 'rolled-back'")->fetchColumn();
    return expect([$seen, $after], [1, 0], '[inside, after rollback]');
});

check('transaction commit visible to another connection', function () use ($c, $t) {
    $c->beginTransaction();
    $c->prepare("INSERT INTO $t (i, s) VALUES (?, ?)")->execute([101, 'committed']);
    $c->commit();
    $n = (int) connect()->query("SELECT COUNT(*) FROM $t WHERE s = 'committed'")->fetchColumn();
    return expect($n, 1, 'rows seen by second connection');
});

check('multiple rowsets', function () use ($t) {
    $e = connect(true); // multi-statement text queries need emulated prepares
    $st = $e->query("SELECT 1 AS a; SELECT 2 AS b, 3 AS c; SELECT COUNT(*) FROM $t");
    $sets = [];
    do {
        $sets[] = $st->fetchAll(PDO::FETCH_NUM);
    } while ($st->nextRowset());
    return expect($sets, [[[1]], [[2, 3]], [[6]]], 'rowsets');
});

check('LOAD DATA LOCAL INFILE', function () use ($c, $t) {
    $file = tempnam(sys_get_temp_dir(), 'tandem-pdo-');
    $lines = '';
    for ($k = 1; $k <= 250; $k++) {
        $lines .= "$k\tload-$k\t" . ($k % 2 ? "é😀" : "\\N") . "\n";
    }
    file_put_contents($file, $lines);
    try {
        $affected = $c->exec("LOAD DATA LOCAL INFILE " . $c->quote($file) . " INTO TABLE $t
            CHARACTER SET utf8mb4 (i, s, n)");
    } finally {
        unlink($file);
    }
    $row = $c->query("SELECT COUNT(*) AS n, SUM(n IS NULL) AS nulls, MAX(n) AS m FROM $t WHERE s LIKE 'load-%'")->fetch(PDO::FETCH_ASSOC);
    return expect([$affected, (int) $row['n'], (int) $row['nulls'], $row['m']], [250, 250, 125, "é😀"], '[affected, rows, nulls, text]');
});

check('error 1062 duplicate key', fn () => expect_error($c, "INSERT INTO $t (s) VALUES (?)", 1062, ['hello']));
check('error 1064 syntax', fn () => expect_error($c, 'SELEC 1', 1064));
check('error 1146 unknown table', fn () => expect_error($c, 'SELECT * FROM php_no_such_table_' . getmypid(), 1146));
check('connection usable after errors', fn () => expect((int) $c->query('SELECT 6')->fetchColumn(), 6, 'SELECT 6'));

check('utf8mb4 emoji round-trip', function () use ($c, $t) {
    $text = "emoji 😀🎉🦀 ü 日本";
    $c->prepare("INSERT INTO $t (s) VALUES (?)")->execute([$text]);
    $id = (int) $c->lastInsertId();
    $c->exec("INSERT INTO $t (s) VALUES (" . $c->quote("text $text") . ")");
    $rows = $c->query("SELECT s, CHAR_LENGTH(s) AS cl FROM $t WHERE id >= $id ORDER BY id")->fetchAll(PDO::FETCH_ASSOC);
    $seed = $c->query('SELECT title FROM posts WHERE id = 1')->fetchColumn();
    return expect(
        [$rows[0]['s'], (int) $rows[0]['cl'], $rows[1]['s'], $seed],
        [$text, preg_match_all('/./us', $text), "text $text", 'Hello world 👋'],
        '[prepared, char_length, text, seed]'
    );
});

check('drop table', function () use ($c, $t) {
    $c->exec("DROP TABLE $t");
    return true;
});

// The compressed protocol: mysqlnd frames every packet once it asked for
// CLIENT_COMPRESS. Payloads from one frame up to several (a 16 MiB packet
// spans frames; 20 MiB is a two-packet statement and row).
$z = null;
check('compressed: connect and query', function () use (&$z) {
    $z = connect(false, [PDO::MYSQL_ATTR_COMPRESS => true]);
    return expect((int) $z->query('SELECT 1 + 1')->fetchColumn(), 2, 'SELECT 1 + 1');
});
if ($z !== null) {
    check('compressed: ordinary queries and a prepared statement', function () use ($z) {
        $title = $z->query('SELECT title FROM posts WHERE id = 1')->fetchColumn();
        $n = (int) $z->query('SELECT COUNT(*) FROM users')->fetchColumn();
        $st = $z->prepare('SELECT email FROM users WHERE id = ?');
        $st->execute([1]);
        return expect([$title, $n, $st->fetchColumn()], ['Hello world 👋', 20, 'alice@example.com'], '[title, users, email]');
    });
    $zt = "{$t}_z";
    check('compressed: create table', fn () => expect($z->exec("CREATE TABLE $zt (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB"), 0, 'rows'));
    foreach ([16 << 10, 64 << 10, 1 << 20, 16 << 20, 20 << 20] as $size) {
        check("compressed: $size bytes REPLACE and SELECT back", function () use ($z, $zt, $size) {
            $data = compressible($size);
            $want = [$size, md5($data)];
            $z->exec("REPLACE INTO $zt VALUES (1, " . $z->quote($data) . ")");
            $row = $z->query("SELECT LENGTH(b), MD5(b), b FROM $zt WHERE id = 1")->fetch(PDO::FETCH_NUM);
            $text = [[(int) $row[0], $row[1]], [strlen($row[2]), md5($row[2])]];
            unset($row);
            $st = $z->prepare("REPLACE INTO $zt VALUES (2, ?)");
            $st->bindValue(1, $data, PDO::PARAM_LOB);
            $st->execute();
            $st = $z->prepare("SELECT b FROM $zt WHERE id = ?");
            $st->execute([2]);
            $b = $st->fetchColumn();
            return expect([$text[0], $text[1], [strlen($b), md5($b)]], [$want, $want, $want], '[server, text, binary] [length, md5]');
        });
    }
    check('compressed: connection usable after large packets', function () use ($z, $zt) {
        $z->exec("DROP TABLE $zt");
        return expect((int) $z->query('SELECT 6')->fetchColumn(), 6, 'SELECT 6');
    });
}

echo "pdo: $passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
