<?php
// A small PHP app written the way the seed recipes' apps are: one connection, reads and
// writes interleaved, transactions, LAST_INSERT_ID, FOUND_ROWS, user variables, prepared
// statements (mysqli native, PDO native and emulated), errors. It prints what the app saw,
// one "ok - label: value" line each; run directly and through tandem, the outputs must be
// identical (the Rust test compares them). Reads that follow a write outside a transaction
// wait (bounded) until the write is visible, as an app on a replicated database must.
//
// Environment: TANDEM_HOST, TANDEM_PORT, TANDEM_USER, TANDEM_PASSWORD, TANDEM_DB.

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
$host = getenv('TANDEM_HOST') ?: '127.0.0.1';
$port = (int) getenv('TANDEM_PORT');
$user = getenv('TANDEM_USER') ?: 'app';
$pass = getenv('TANDEM_PASSWORD') ?: 'apppass';
$name = getenv('TANDEM_DB') ?: 'appdb';
$t = 'php_app_' . getmypid();

function say($label, $value) {
    echo "ok - $label: " . (is_string($value) ? $value : json_encode($value)) . "\n";
}

/**
 * Polls until $sql returns $want (bounded): the app tolerating replication lag. The test
 * names the replicas in TANDEM_APP_REPLICAS so the wait covers each of them (a hint
 * comment; without tandem it is only a comment), and the next read, wherever it lands,
 * sees the write.
 */
function wait_for($db, $sql, $want) {
    $hints = array_filter(explode(',', getenv('TANDEM_APP_REPLICAS') ?: ''));
    $prefixes = $hints ? array_map(fn($b) => "/* tandem:backend=$b */ ", $hints) : [''];
    $got = null;
    foreach ($prefixes as $prefix) {
        $deadline = microtime(true) + 10;
        do {
            try {
                $got = $db->query($prefix . $sql)->fetch_row()[0];
            } catch (mysqli_sql_exception $e) {
                // 1146: the table itself has not replicated yet.
                if ($e->getCode() != 1146) {
                    throw $e;
                }
                $got = null;
            }
            if ((string) $got === (string) $want) {
                break;
            }
            usleep(20000);
        } while (microtime(true) < $deadline);
    }
    return $got;
}

$db = new mysqli($host, $user, $pass, $name, $port);
$db->set_charset('utf8mb4');
$db->query("CREATE TABLE $t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) UNIQUE, qty INT) ENGINE=InnoDB");

$ins = $db->prepare("INSERT INTO $t (name, qty) VALUES (?, ?)");
foreach ([['apple', 3], ['pear', 5], ['plum', 7], ['kiwi 🥝', 9]] as [$n, $q]) {
    $ins->bind_param('si', $n, $q);
    $ins->execute();
    say("insert $n id", $db->insert_id);
}
$ins->close();
say('visible rows', wait_for($db, "SELECT COUNT(*) FROM $t", 4));
say('list', $db->query("SELECT name, qty FROM $t ORDER BY id")->fetch_all());

// A transaction sees its own writes; a rollback undoes them.
$db->begin_transaction();
$db->query("UPDATE $t SET qty = qty - 1 WHERE name = 'apple'");
say('own write in transaction', $db->query("SELECT qty FROM $t WHERE name = 'apple'")->fetch_row()[0]);
$db->rollback();
say('after rollback', wait_for($db, "SELECT qty FROM $t WHERE name = 'apple'", 3));

$db->begin_transaction();
$db->query("UPDATE $t SET qty = qty + 10 WHERE name = 'pear'");
$db->query("UPDATE $t SET qty = qty - 10 WHERE name = 'plum'");
say('sum in transaction', $db->query("SELECT SUM(qty) FROM $t")->fetch_row()[0]);
$db->commit();
say('after commit', wait_for($db, "SELECT qty FROM $t WHERE name = 'pear'", 15));

// Session state: user variables, LAST_INSERT_ID, FOUND_ROWS, warnings.
$db->query("SET @mult = 3");
say('user variable in a read', $db->query("SELECT name, qty * @mult FROM $t ORDER BY id LIMIT 2")->fetch_all());
$db->query("INSERT INTO $t (name, qty) VALUES ('fig', 1)");
say('LAST_INSERT_ID()', $db->query("SELECT LAST_INSERT_ID()")->fetch_row()[0]);
$db->query("SELECT SQL_CALC_FOUND_ROWS name FROM $t ORDER BY id LIMIT 1")->fetch_all();
say('FOUND_ROWS()', $db->query("SELECT FOUND_ROWS()")->fetch_row()[0]);
$db->query("SELECT 1/0")->fetch_all();
say('warning_count', $db->warning_count);
say('SHOW WARNINGS', $db->query("SHOW WARNINGS")->fetch_all());

// multi_query (pins the session to the primary through tandem).
$db->multi_query("SELECT COUNT(*) FROM $t; SELECT MAX(qty) FROM $t");
$sets = [];
do {
    if ($r = $db->store_result()) {
        $sets[] = $r->fetch_all();
        $r->free();
    }
} while ($db->more_results() && $db->next_result());
say('multi_query', $sets);

// Errors keep their codes.
try {
    $db->query("INSERT INTO $t (name, qty) VALUES ('apple', 1)");
} catch (mysqli_sql_exception $e) {
    say('duplicate key', $e->getCode());
}
try {
    $db->query("SELEC 1");
} catch (mysqli_sql_exception $e) {
    say('syntax error', $e->getCode());
}

// PDO, native and emulated prepares.
foreach ([false, true] as $emulate) {
    $pdo = new PDO("mysql:host=$host;port=$port;dbname=$name;charset=utf8mb4", $user, $pass, [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => $emulate,
    ]);
    $label = $emulate ? 'pdo emulated' : 'pdo native';
    $st = $pdo->prepare("SELECT name, qty FROM $t WHERE qty >= ? ORDER BY id");
    $st->execute([5]);
    say("$label select", $st->fetchAll(PDO::FETCH_NUM));
    $pdo->beginTransaction();
    $up = $pdo->prepare("UPDATE $t SET qty = qty + ? WHERE name = ?");
    $up->execute([1, 'fig']);
    $st = $pdo->prepare("SELECT qty FROM $t WHERE name = ?");
    $st->execute(['fig']);
    say("$label own write", $st->fetchColumn());
    $pdo->commit();
    $pdo = null;
}
say('final', wait_for($db, "SELECT qty FROM $t WHERE name = 'fig'", 3));

$db->query("DROP TABLE $t");
$db->close();
echo "php app: done\n";
