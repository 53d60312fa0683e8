-- Transaction control. BEGIN and START TRANSACTION commit an open transaction.

-- expect: begin flags=implicit_commit
BEGIN

-- expect: begin flags=implicit_commit
begin work

-- expect: begin flags=implicit_commit
BEGIN;

-- expect: begin flags=implicit_commit
START TRANSACTION

-- expect: begin:read_only flags=implicit_commit
START TRANSACTION READ ONLY

-- expect: begin flags=implicit_commit
START TRANSACTION READ WRITE

-- expect: begin:consistent_snapshot flags=implicit_commit
START TRANSACTION WITH CONSISTENT SNAPSHOT

-- expect: begin:read_only+consistent_snapshot flags=implicit_commit
START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY

-- expect: begin:read_only+consistent_snapshot flags=implicit_commit
start transaction read only, with consistent snapshot

-- expect: begin:consistent_snapshot flags=implicit_commit
START TRANSACTION WITH CONSISTENT SNAPSHOT, READ WRITE

-- expect: other decider=unknown
START TRANSACTION READ SOMETIMES

-- expect: other decider=unknown
START TRANSACTION WITH SNAPSHOT

-- expect: other decider=unknown
BEGIN TRANSACTION NOW

-- expect: commit
COMMIT

-- expect: commit
commit work

-- expect: commit:chain
COMMIT AND CHAIN

-- expect: commit
COMMIT AND NO CHAIN

-- expect: commit:release
COMMIT RELEASE

-- expect: commit
COMMIT NO RELEASE

-- expect: commit:chain+release
COMMIT WORK AND CHAIN RELEASE

-- expect: commit
COMMIT AND NO CHAIN NO RELEASE

-- expect: other decider=unknown
COMMIT NOW

-- expect: rollback
ROLLBACK

-- expect: rollback
ROLLBACK WORK

-- expect: rollback:chain
ROLLBACK AND CHAIN

-- expect: rollback:release
rollback release

-- expect: rollback_to_savepoint name=sp1
ROLLBACK TO SAVEPOINT sp1

-- expect: rollback_to_savepoint name=sp1
ROLLBACK WORK TO sp1

-- expect: rollback_to_savepoint name=my`sp
ROLLBACK TO `my``sp`

-- expect: savepoint name=sp1
SAVEPOINT sp1

-- expect: savepoint name=SP_2
savepoint SP_2;

-- expect: release_savepoint name=sp1
RELEASE SAVEPOINT sp1

-- expect: other decider=unknown
SAVEPOINT

-- expect: other decider=unknown
RELEASE sp1

-- expect: xa
XA START 'xid1'

-- expect: xa
XA END 'xid1'

-- expect: xa
XA PREPARE 'xid1'

-- expect: xa
XA COMMIT 'xid1'

-- expect: xa
XA COMMIT 'xid1' ONE PHASE

-- expect: xa
XA ROLLBACK 'xid1'

-- expect: xa
XA RECOVER

-- expect: xa
XA BEGIN 'x', 'y', 1

-- expect: lock_tables flags=implicit_commit
LOCK TABLES users READ, posts WRITE

-- expect: lock_tables flags=implicit_commit
lock table users as u read local

-- expect: unlock_tables
UNLOCK TABLES

-- expect: unlock_tables
unlock table

-- expect: admin
LOCK INSTANCE FOR BACKUP

-- expect: admin
UNLOCK INSTANCE

-- expect: set_transaction flags=transaction_setting
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE

-- expect: set_transaction flags=transaction_setting
SET TRANSACTION READ ONLY

-- expect: set_transaction flags=transaction_setting,session_variable
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED

-- expect: set_transaction flags=transaction_setting,session_variable
set local transaction read write

-- expect: set_transaction flags=transaction_setting,global_variable
SET GLOBAL TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- expect: set flags=transaction_setting,session_variable
SET SESSION transaction_isolation = 'READ-COMMITTED'

-- expect: set flags=transaction_setting,session_variable
SET tx_isolation = 'SERIALIZABLE'

-- expect: set flags=transaction_setting,session_variable
SET @@transaction_read_only = 1

-- expect: set flags=global_variable
SET @@global.transaction_isolation = 'READ-COMMITTED'

-- expect: begin flags=implicit_commit,multi_statement
BEGIN; SELECT 1; COMMIT

-- expect: admin flags=implicit_commit
START SLAVE

-- expect: admin flags=implicit_commit
START REPLICA SQL_THREAD

-- expect: admin flags=implicit_commit
STOP SLAVE IO_THREAD

-- expect: admin flags=implicit_commit
START ALL SLAVES
