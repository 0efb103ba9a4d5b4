-- The agent's state database (stockyard.agent.outbox): SQLite only, on the agent's own
-- machine. Named `.sqlite.sql` because it is no Stockyard database's: the conformance suite
-- (tests/test_queries.py) runs the Stockyard schema's files only.

-- name: create_outbox
-- Pushes waiting for Stockyard, sent in (seq, part) order; a batch Stockyard refused as
-- invalid is split into parts of one record each, in its place.
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER NOT NULL,
    part INTEGER NOT NULL DEFAULT 0,
    role TEXT NOT NULL DEFAULT 'source',
    topic TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    records INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (seq, part)
)

-- name: outbox_columns
-- The outbox's columns (a state database from before `role` gets it added).
SELECT name FROM pragma_table_info('outbox')

-- name: add_outbox_role
-- Which of the agent's connections a push is for: 'source' ([stockyard] connection) or
-- 'fulfillment' ([fulfillment] connection). Sent in order per connection.
ALTER TABLE outbox ADD COLUMN role TEXT NOT NULL DEFAULT 'source'

-- name: create_hashes
-- The content hash of each record last put in the outbox, and its body (JSON): a record
-- that vanishes from the ERP is withdrawn as it was last pushed, with active = false.
CREATE TABLE IF NOT EXISTS hashes (
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    body TEXT,
    PRIMARY KEY (topic, key)
)

-- name: hash_columns
-- The hashes table's columns (a state database from before `body` gets it added).
SELECT name FROM pragma_table_info('hashes')

-- name: add_hash_body
-- The column `body` for a state database from before it.
ALTER TABLE hashes ADD COLUMN body TEXT

-- name: create_cursors
-- The greatest change marker read per section, stored with the batch it read.
CREATE TABLE IF NOT EXISTS cursors (section TEXT PRIMARY KEY, value TEXT NOT NULL)

-- name: create_dead
-- Records Stockyard refused as invalid (422): kept for `stockyard agent check`.
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    error TEXT NOT NULL,
    died_at REAL NOT NULL
)

-- name: next_seq
-- The seq of a new batch.
SELECT coalesce(max(seq), 0) + 1 FROM outbox

-- name: add
-- A batch into the outbox.
INSERT INTO outbox (seq, part, role, topic, message_id, body, records, created_at)
VALUES (:seq, :part, :role, :topic, :message_id, :body, :records, :created_at)

-- name: head
-- The next batches to send to one connection, oldest first.
SELECT seq, part, topic, message_id, body, records, attempts, role FROM outbox
WHERE role = :role ORDER BY seq, part LIMIT :limit

-- name: pending_roles
-- The connections that have pushes waiting.
SELECT DISTINCT role FROM outbox ORDER BY role DESC

-- name: pending
-- Batches and records waiting.
SELECT count(*), coalesce(sum(records), 0) FROM outbox

-- name: pending_of_role
-- Batches and records waiting for one connection.
SELECT count(*), coalesce(sum(records), 0) FROM outbox WHERE role = :role

-- name: drop_role
-- `stockyard agent drop-fulfillments`: a connection's pushes, dropped on purpose.
DELETE FROM outbox WHERE role = :role

-- name: sent
-- A batch Stockyard accepted.
DELETE FROM outbox WHERE seq = :seq AND part = :part

-- name: failed_attempt
-- A delivery that did not get through: kept, noted.
UPDATE outbox SET attempts = attempts + 1, last_error = :error WHERE seq = :seq AND part = :part

-- name: bury
-- A record Stockyard refused as invalid.
INSERT INTO dead (topic, message_id, body, error, died_at)
VALUES (:topic, :message_id, :body, :error, :died_at)

-- name: dead_letters
-- The refused records, newest first.
SELECT topic, message_id, body, error, died_at FROM dead ORDER BY id DESC LIMIT :limit

-- name: dead_count
-- How many records were refused.
SELECT count(*) FROM dead

-- name: all_hashes
-- Every hash of a topic.
SELECT key, digest FROM hashes WHERE topic = :topic

-- name: set_hash
-- A record's new hash and body.
INSERT INTO hashes (topic, key, digest, body) VALUES (:topic, :key, :digest, :body)
ON CONFLICT (topic, key) DO UPDATE SET digest = excluded.digest, body = excluded.body

-- name: hash_body
-- The body a record was last pushed with (NULL from a state database before bodies).
SELECT body FROM hashes WHERE topic = :topic AND key = :key

-- name: forget_hash
-- A record withdrawn: pushed again in full if it comes back.
DELETE FROM hashes WHERE topic = :topic AND key = :key

-- name: cursor_of
-- A section's cursor.
SELECT value FROM cursors WHERE section = :section

-- name: set_cursor
-- A section's new cursor.
INSERT INTO cursors (section, value) VALUES (:section, :value)
ON CONFLICT (section) DO UPDATE SET value = excluded.value

-- name: forget_hashes
-- Reconcile: every record is pushed again on the next poll.
DELETE FROM hashes

-- name: forget_cursors
-- Reconcile: every row is read again on the next poll.
DELETE FROM cursors

-- name: create_unsettled
-- Outcomes of order work not yet taken by Stockyard (the settle got no answer, or the
-- agent stopped before it): settled again with their session until Stockyard answers.
CREATE TABLE IF NOT EXISTS unsettled (
    item INTEGER PRIMARY KEY,
    role TEXT NOT NULL DEFAULT 'source',
    session TEXT NOT NULL,
    outcome TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    kept_at REAL NOT NULL
)

-- name: unsettled_columns
-- The unsettled table's columns (a state database from before `role` gets it added).
SELECT name FROM pragma_table_info('unsettled')

-- name: add_unsettled_role
-- Which connection's item an outcome is (settled through that connection).
ALTER TABLE unsettled ADD COLUMN role TEXT NOT NULL DEFAULT 'source'

-- name: keep_outcome
-- An outcome to settle.
INSERT INTO unsettled (item, role, session, outcome, kept_at)
VALUES (:item, :role, :session, :outcome, :kept_at)
ON CONFLICT (item) DO UPDATE SET session = excluded.session, outcome = excluded.outcome,
    role = excluded.role, tries = 0, kept_at = excluded.kept_at

-- name: unsettled
-- One connection's outcomes waiting, oldest first.
SELECT item, session, outcome, tries, kept_at FROM unsettled WHERE role = :role
ORDER BY kept_at, item

-- name: settle_tried
-- A settle of this outcome that got no answer.
UPDATE unsettled SET tries = tries + 1 WHERE item = :item

-- name: drop_outcome
-- An outcome Stockyard took, refused, or that the agent gave up.
DELETE FROM unsettled WHERE item = :item

-- name: unsettled_count
-- How many outcomes wait for one connection.
SELECT count(*) FROM unsettled WHERE role = :role

-- name: drop_role_outcomes
-- `stockyard agent drop-fulfillments`: a connection's kept outcomes, dropped on purpose.
DELETE FROM unsettled WHERE role = :role

-- name: create_made
-- The fulfilments this agent made (create_fulfillment): only theirs are pushed, an ERP's
-- own orders being no fulfilments of Stockyard's. Kept by reconcile.
CREATE TABLE IF NOT EXISTS made_fulfillments (remote_id TEXT PRIMARY KEY, made_at REAL NOT NULL)

-- name: add_made
-- A fulfilment made.
INSERT INTO made_fulfillments (remote_id, made_at) VALUES (:remote_id, :made_at)
ON CONFLICT (remote_id) DO NOTHING

-- name: made
-- Every fulfilment made.
SELECT remote_id FROM made_fulfillments

-- name: seed_hash
-- What Stockyard holds of a fulfilment just made (open, no tracking), unless a state was
-- pushed for it already: the same state read from the ERP is no change.
INSERT INTO hashes (topic, key, digest, body) VALUES (:topic, :key, :digest, :body)
ON CONFLICT (topic, key) DO NOTHING
