#!/usr/bin/env bash
# The mariadb command-line client against a MySQL endpoint: the testbed primary, or tandem.
# Target from the environment: TANDEM_HOST, TANDEM_PORT (required), TANDEM_USER, TANDEM_PASSWORD,
# TANDEM_DB (default appdb). Prints "ok - name" / "not ok - name: detail"; exits 1 if any failed.
# Tables are named cli_<pid>, so concurrent runs (direct and proxied) do not collide.
set -uo pipefail

: "${TANDEM_PORT:?TANDEM_PORT is not set}"
HOST=${TANDEM_HOST:-127.0.0.1}
USER_=${TANDEM_USER:-app}
PASS=${TANDEM_PASSWORD-apppass}
DB=${TANDEM_DB:-appdb}
T=cli_$$
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1: $2"; failed=$((failed + 1)); }

# --no-defaults: no option file of this machine changes what is tested.
cli() {
    timeout 30 mariadb --no-defaults --host="$HOST" --port="$TANDEM_PORT" --user="$USER_" \
        --password="$PASS" --default-character-set=utf8mb4 --connect-timeout=10 "$@" "$DB"
}

# expect NAME WANT GOT
expect() {
    if [[ $3 == "$2" ]]; then ok "$1"; else not_ok "$1" "got '$3', want '$2'"; fi
}

out=$(cli -N -B -e 'SELECT 1 + 1' 2>&1)
if [[ $out != 2 ]]; then
    not_ok "connect and -e query" "$out"
    echo "cli: $passed passed, $((failed)) failed"
    exit 1
fi
ok "connect and -e query"

expect "-e with several statements" $'1\n2\t3' "$(cli -N -B -e 'SELECT 1; SELECT 2, 3' 2>&1)"
expect "utf8mb4 emoji read" "Ships on Fridays 🚀" "$(cli -N -B -e 'SELECT bio FROM users WHERE id = 1' 2>&1)"
expect "statements from stdin" "20" "$(echo 'SELECT COUNT(*) FROM users;' | cli -N -B 2>&1)"

cat >"$TMP/script.sql" <<SQL
DROP TABLE IF EXISTS $T;
CREATE TABLE $T (id INT PRIMARY KEY, s VARCHAR(100) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO $T VALUES (1, 'one'), (2, 'deux 😀'), (3, NULL);
START TRANSACTION;
INSERT INTO $T VALUES (4, 'rolled back');
ROLLBACK;
SQL
out=$(cli -N -B -e "source $TMP/script.sql; SELECT COUNT(*), (SELECT s FROM $T WHERE id = 2) FROM $T" 2>&1)
expect "source a sql file" $'3\tdeux 😀' "$out"

for ((i = 1; i <= 200; i++)); do printf '%d\trow-%d\n' $((i + 100)) "$i"; done >"$TMP/data.tsv"
out=$(cli --local-infile=1 -N -B -e "LOAD DATA LOCAL INFILE '$TMP/data.tsv' INTO TABLE $T (id, s);
    SELECT COUNT(*) FROM $T WHERE s LIKE 'row-%'" 2>&1)
expect "LOAD DATA LOCAL INFILE" "200" "$out"

out=$(cli -e '\s' 2>&1)
if [[ $out == *"Server version:"* && $out == *"Connection id:"* ]]; then
    ok "status (\\s) shows server version and connection id"
else
    not_ok "status (\\s) shows server version and connection id" "$(echo "$out" | tr '\n' ' ')"
fi

# --compress: the client compresses only when the server offers CLIENT_COMPRESS; \s says so.
out=$(cli --compress -e '\s' 2>&1)
if [[ $out == *"Protocol:"*"Compressed"* ]]; then
    ok "--compress: status (\\s) says the protocol is compressed"
else
    not_ok "--compress: status (\\s) says the protocol is compressed" "$(echo "$out" | grep -i protocol | tr '\n' ' ')"
fi
expect "--compress: queries and a 1 MiB value" $'20\t1048576\t'"$(head -c 1048576 /dev/zero | tr '\0' z | md5sum | cut -d' ' -f1)" \
    "$(cli --compress -N -B -e "SELECT COUNT(*) FROM users; SET @v = REPEAT('z', 1048576); SELECT LENGTH(@v), MD5(@v)" 2>&1 | tr '\n' '\t' | sed 's/\t$//')"

out=$(cli --compress --local-infile=1 -N -B -e "DELETE FROM $T WHERE id > 100;
    LOAD DATA LOCAL INFILE '$TMP/data.tsv' INTO TABLE $T (id, s); SELECT COUNT(*) FROM $T WHERE s LIKE 'row-%'" 2>&1)
expect "--compress: LOAD DATA LOCAL INFILE" "200" "$out"

# expect_error NAME SQL CODE: exit status 1 and "ERROR CODE (SQLSTATE) at line 1: ..." on stderr
# (the 10.11 client also echoes the failed statement there).
expect_error() {
    local rc
    out=$(cli -N -B -e "$2" 2>&1 >/dev/null)
    rc=$?
    if [[ $rc -eq 1 && $out == *"ERROR $3 ("* ]]; then ok "$1"; else not_ok "$1" "exit $rc, stderr '$out'"; fi
}
expect_error "bad query: exit 1 and error 1064" "SELEC 1" 1064
expect_error "unknown table: error 1146" "SELECT * FROM cli_no_such_$$" 1146
expect_error "duplicate key: error 1062" "INSERT INTO $T VALUES (1, 'again')" 1062

# A compound statement that used a cursor: MariaDB flags its result with CURSOR_EXISTS, yet the
# rows follow. Then a second statement on the same connection must still be answered.
out=$(cli -N -B 2>&1 <<SQL
DELIMITER \$\$
BEGIN NOT ATOMIC DECLARE x INT; DECLARE c CURSOR FOR SELECT id FROM $T ORDER BY id; OPEN c; FETCH c INTO x; CLOSE c; SELECT 'x', x; END \$\$
DELIMITER ;
SELECT 'after', COUNT(*) FROM $T;
SQL
)
expect "compound statement with a cursor, then another statement" $'x\t1\nafter\t203' "$out"

# The character set of the handshake is the connection's, on every backend connection.
bin() { cli --default-character-set=binary "$@"; }
expect "handshake character set binary" $'binary\tbinary\tbinary' \
    "$(bin -N -B -e 'SELECT @@character_set_client, @@character_set_connection, @@character_set_results' 2>&1)"
# The database named at login is checked in the client's character set (not as SQL text).
out=$(timeout 30 mariadb --no-defaults --host="$HOST" --port="$TANDEM_PORT" --user="$USER_" \
    --password="$PASS" --default-character-set=binary -D 'x😀' -N -B -e 'SELECT 1' 2>&1)
if [[ $out == *"ERROR 1300"*"Invalid binary character string"* ]]; then
    ok "login database judged in the handshake's character set"
else
    not_ok "login database judged in the handshake's character set" "$out"
fi

# Dropping the current database unselects it; the next client that logs in with a database of
# that name (recreated) must have it selected, whichever pooled connection it gets.
D=cli_db_$$
cli_in() {
    local db=$1
    shift
    timeout 30 mariadb --no-defaults --host="$HOST" --port="$TANDEM_PORT" --user="$USER_" \
        --password="$PASS" --connect-timeout=10 "$@" "$db"
}
cli -N -B -e "CREATE DATABASE $D; USE $D; DROP DATABASE $D; SELECT IFNULL(DATABASE(), 'none')" >"$TMP/drop" 2>&1
expect "dropping the current database unselects it" "none" "$(cat "$TMP/drop")"
cli -e "CREATE DATABASE $D; CREATE TABLE $D.x (a INT)" >/dev/null 2>&1
expect "login database selected after an earlier session dropped it" $'1\t'"$D" \
    "$(cli_in "$D" -N -B -e 'INSERT INTO x VALUES (1); SELECT COUNT(*), DATABASE() FROM x' 2>&1)"

# mysqlslap, as the issue ran it: a write load, then one committing every 10 statements with
# autocommit off, each client connecting with the database in the handshake.
slap() {
    timeout 60 mysqlslap --no-defaults --host="$HOST" --port="$TANDEM_PORT" --user="$USER_" \
        --password="$PASS" --create-schema="$D" --auto-generate-sql \
        --auto-generate-sql-load-type=write --number-of-queries=200 --concurrency=4 "$@"
}
if out=$(slap 2>&1) && out2=$(slap --commit=10 2>&1); then
    ok "mysqlslap write load, then with --commit=10"
else
    not_ok "mysqlslap write load, then with --commit=10" "$(echo "$out ${out2:-}" | tail -3 | tr '\n' ' ')"
fi
cli -e "DROP DATABASE IF EXISTS $D" >/dev/null 2>&1

if out=$(cli -N -B -e "DROP TABLE $T" 2>&1); then ok "drop table"; else not_ok "drop table" "$out"; fi

echo "cli: $passed passed, $failed failed"
((failed == 0))
