#!/usr/bin/env bash
# sysbench oltp_read_write against a MySQL endpoint (the testbed primary, or tandem), once with
# server-side prepared statements (--db-ps-mode=auto) and once with the text protocol
# (--db-ps-mode=disable). Self-contained: drops leftovers, prepares, runs, cleans up.
#
# Target from the environment: TANDEM_HOST, TANDEM_PORT (required), TANDEM_USER, TANDEM_PASSWORD.
# TANDEM_SYSBENCH_DB (default sbtest; created if missing): sysbench's tables are always
# sbtest1..N, so concurrent runs need distinct databases. TANDEM_SYSBENCH_TIME: seconds per mode
# (default 10). TANDEM_SYSBENCH_THREADS (default 4). TANDEM_SYSBENCH_EXTRA: more sysbench options
# for the runs (e.g. --skip_trx=on). TANDEM_SYSBENCH_IGNORE: error codes sysbench retries
# (default 1213; with --skip_trx=on add 1062: without transactions, two threads' DELETE+INSERT of
# one id race to a duplicate key, on MariaDB directly as through tandem).
#
# A mode fails when sysbench exits non-zero, reconnects, runs no transaction, or reports an
# error other than 1213 (deadlock). Deadlocks are the server's normal answer to 4 threads
# updating 2 small tables (seen directly on MariaDB, a few per run); sysbench retries the
# transaction, and they are counted and printed, not failed. Every other error is fatal
# (--mysql-ignore-errors=1213), so "errors: 0" below means no error reached the client.
set -uo pipefail

: "${TANDEM_PORT:?TANDEM_PORT is not set}"
HOST=${TANDEM_HOST:-127.0.0.1}
USER_=${TANDEM_USER:-app}
PASS=${TANDEM_PASSWORD-apppass}
DB=${TANDEM_SYSBENCH_DB:-sbtest}
TIME=${TANDEM_SYSBENCH_TIME:-10}
THREADS=${TANDEM_SYSBENCH_THREADS:-4}
read -r -a EXTRA <<<"${TANDEM_SYSBENCH_EXTRA:-}"
IGNORE=${TANDEM_SYSBENCH_IGNORE:-1213}
LOG=$(mktemp -d)

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1: $2"; failed=$((failed + 1)); }

sb() {
    timeout $((TIME + 120)) sysbench oltp_read_write --db-driver=mysql \
        --mysql-host="$HOST" --mysql-port="$TANDEM_PORT" --mysql-user="$USER_" \
        --mysql-password="$PASS" --mysql-db="$DB" --mysql-ignore-errors="$IGNORE" \
        --tables=2 --table-size=1000 --threads="$THREADS" "$@"
}

cleanup() {
    sb cleanup >"$LOG/cleanup.log" 2>&1
    local rc=$?
    rm -rf "$LOG"
    return $rc
}
trap cleanup EXIT

out=$(timeout 30 mariadb --no-defaults --host="$HOST" --port="$TANDEM_PORT" --user="$USER_" \
    --password="$PASS" --connect-timeout=10 -e "CREATE DATABASE IF NOT EXISTS \`$DB\`" 2>&1) ||
    { not_ok "create database $DB" "$out"; echo "sysbench: $passed passed, $failed failed"; exit 1; }

sb cleanup >"$LOG/cleanup0.log" 2>&1 # leftovers of an interrupted run
if sb prepare >"$LOG/prepare.log" 2>&1; then
    ok "prepare"
else
    not_ok "prepare" "$(tail -n 5 "$LOG/prepare.log" | tr '\n' ' ')"
    echo "sysbench: $passed passed, $failed failed"
    exit 1
fi

# field LOG NAME: the first number after "NAME:" in sysbench's report.
field() { awk -v k="$2:" '$0 ~ "^ *" k { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $i; exit } }' "$1"; }

for mode in auto disable; do
    name="run --db-ps-mode=$mode (${TIME}s, $THREADS threads)"
    log="$LOG/run-$mode.log"
    sb --db-ps-mode="$mode" --time="$TIME" --events=0 "${EXTRA[@]}" run >"$log" 2>&1
    rc=$?
    tx=$(field "$log" transactions)
    ignored=$(field "$log" "ignored errors")
    reconnects=$(field "$log" reconnects)
    # Only the codes in $IGNORE are retried by sysbench; any other error made it exit non-zero.
    retried=${ignored:-0}
    errors=$(( ${reconnects:-0} + (rc != 0) ))
    summary="transactions: ${tx:-?}, errors: $errors, errors retried ($IGNORE): $retried, reconnects: ${reconnects:-?}"
    if [[ $rc -eq 0 && ${tx:-0} -gt 0 && -n $ignored && -n $reconnects && $errors -eq 0 ]]; then
        ok "$name: $summary"
    else
        not_ok "$name" "exit $rc, $summary; $(grep -E 'FATAL|ERROR|error' "$log" | grep -v 'ignored errors' | head -n 5 | tr '\n' ' ')"
    fi
done

if cleanup; then ok "cleanup"; else not_ok "cleanup" "sysbench cleanup failed"; fi
trap - EXIT
echo "sysbench: $passed passed, $failed failed"
((failed == 0))
