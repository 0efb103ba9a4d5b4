-- The queue engine's statements (stockyard.engine). Batches travel as one JSON array
-- parameter read back as rows of `d.value` ({json_rows}); id lists as list parameters.
-- queries.sqlite.sql and queries.postgresql.sql hold the claims (SKIP LOCKED on
-- PostgreSQL) and the allocation of item ids.

-- ============================================================================ enqueue

-- name: connections_of
-- What the engine reads of these connections: whose, which kind, their description.
SELECT id, client_id, kind, description FROM connections WHERE {in_list(id, :ids)}

-- name: known_keys
-- The items of a client that already hold one of these idempotency keys.
SELECT idempotency_key, id FROM items
WHERE client_id = :client_id AND {in_list(idempotency_key, :keys)}

-- name: insert_items
-- New queued items, one per row of the batch (id, instruction, blocking, connection_id,
-- lane_id, payload, refs, description, parent_id, idempotency_key, run_after,
-- coalesce_key). Payloads and refs are stored as the JSON text they already are.
INSERT INTO items (id, client_id, instruction, blocking, connection_id, lane_id, status,
  payload, refs, description, parent_id, idempotency_key, created_at, updated_at, run_after,
  coalesce_key)
SELECT CAST(d.value->>0 AS BIGINT), :client_id, d.value->>1, CAST(d.value->>2 AS INTEGER),
  CAST(d.value->>3 AS BIGINT), CAST(d.value->>4 AS BIGINT), 'queued', d.value->>5,
  d.value->>6, d.value->>7, CAST(d.value->>8 AS BIGINT), d.value->>9, :now, :now,
  CAST(d.value->>10 AS DOUBLE PRECISION), d.value->>11
FROM {json_rows(:batch)}

-- name: insert_item
-- One new queued item, its id drawn by the statement (the sequence; on SQLite max(id) + 1,
-- as allocate_ids would): a single-item enqueue saves that round trip and the unpacking
-- of a JSON batch. Its id.
INSERT INTO items (id, client_id, instruction, blocking, connection_id, lane_id, status,
  payload, refs, description, parent_id, idempotency_key, created_at, updated_at, run_after,
  coalesce_key)
VALUES ({next_id(items)}, :client_id, :instruction, :blocking, :connection_id, :lane_id,
  'queued', :payload, :refs, :description, :parent_id, :idempotency_key, :now, :now,
  :run_after, :coalesce_key)
RETURNING id

-- name: insert_ref
-- An item's reference (a SKU, an order number), its case-folded form and the item's client:
-- a client's items are found by them, in any case, on item_refs_folded (client first, so
-- no other client's references are in a search's range).
INSERT INTO item_refs (ref, item_id, folded, client_id)
VALUES (:ref, :item_id, :folded, :client_id)
ON CONFLICT DO NOTHING

-- name: supersede
-- Queued items of a lane with a coalescing key that a newer item of the batch (lane, key,
-- item id) replaces; returns the lane of each.
UPDATE items SET status = 'superseded', superseded_by = CAST(d.value->>2 AS BIGINT),
  finished_at = :now, updated_at = :now
FROM {json_rows(:batch)}
WHERE items.lane_id = CAST(d.value->>0 AS BIGINT) AND items.coalesce_key = d.value->>1
  AND items.status = 'queued' AND items.id < CAST(d.value->>2 AS BIGINT)
RETURNING items.lane_id

-- ============================================================================== lanes

-- name: open_lane
-- A new, empty lane (its id is its connection's).
INSERT INTO lanes (id, client_id) VALUES (:id, :client_id)

-- name: lock_lanes
-- Take these lanes' row locks, in id order (PostgreSQL; SQLite has one writer).
SELECT id FROM lanes WHERE {in_list(id, :ids)} ORDER BY id {for_update}

-- name: update_lanes
-- Add each row's (lane, delta) to the lane's pending count and re-derive its head (kept
-- while running or failed, else the lowest queued id) and ready_at: when a queued head
-- became due, so no earlier than now (lanes of a client take turns by how long they have
-- been ready, and a lane is handed to another worker only after waiting); a lane still
-- ready with the same head keeps its place (more items queued behind it change nothing).
-- MATERIALIZED: each head is derived once (inlined, PostgreSQL computes it twice).
WITH h AS MATERIALIZED (
  SELECT l.id AS lane, CAST(d.value->>1 AS INTEGER) AS delta,
    CASE WHEN (SELECT status FROM items WHERE id = l.head_id) IN ('running', 'failed')
    THEN l.head_id
    ELSE (SELECT min(id) FROM items WHERE lane_id = l.id AND status = 'queued') END AS head
  FROM {json_rows(:batch)} JOIN lanes l ON l.id = CAST(d.value->>0 AS BIGINT)
)
UPDATE lanes SET pending = lanes.pending + h.delta, head_id = h.head,
  ready_at = CASE WHEN h.head = lanes.head_id AND lanes.ready_at IS NOT NULL
    THEN lanes.ready_at ELSE (
      SELECT CASE WHEN run_after > CAST(:now AS DOUBLE PRECISION) THEN run_after
        ELSE CAST(:now AS DOUBLE PRECISION) END
      FROM items WHERE id = h.head AND status = 'queued'
    ) END
FROM h WHERE lanes.id = h.lane

-- name: next_lane_due
-- When the earliest ready lane may run (the ready-lanes index).
SELECT min(ready_at) FROM lanes WHERE ready_at IS NOT NULL AND paused = 0

-- name: lane_paused
-- Whether a lane of the client is paused, locking its row.
SELECT paused FROM lanes WHERE id = :lane_id AND client_id = :client_id {for_update}

-- name: put_limits
-- A connection's limits (NULL: none of that kind); a new rate bucket starts full.
INSERT INTO limits (connection_id, client_id, max_running, per_second, burst, tokens,
  tokens_at)
VALUES (:connection_id, :client_id, :max_running, :per_second, :burst, :tokens, :now)
ON CONFLICT (connection_id) DO UPDATE SET max_running = excluded.max_running,
  per_second = excluded.per_second, burst = excluded.burst, tokens = excluded.tokens,
  tokens_at = excluded.tokens_at

-- name: drop_limits
-- A connection without limits.
DELETE FROM limits WHERE connection_id = :connection_id

-- name: limits_of
-- The limits of these connections of the client that have some.
SELECT connection_id, max_running, per_second, burst FROM limits
WHERE client_id = :client_id AND {in_list(connection_id, :ids)}

-- name: set_paused
-- Pause (with when, who and why) or resume a lane.
UPDATE lanes SET paused = :paused, paused_at = :paused_at, paused_by = :paused_by,
  pause_reason = :reason
WHERE id = :lane_id

-- ============================================================================= claims

-- name: worker_alive
-- The worker's row, locked (before any lane), so that a reap cannot slip in.
SELECT stopped_at FROM workers WHERE id = :worker_id {for_update}

-- name: start_heads
-- Start these lane heads (from client_lanes_due, then take_lanes) under the worker.
UPDATE items SET status = 'running', worker_id = :worker_id, started_at = :now,
  updated_at = :now, attempts = attempts + 1
WHERE {in_list(id, :ids)}
RETURNING id, client_id, instruction, connection_id, lane_id, payload, attempts, failures,
  parent_id, started_at, run_after

-- name: next_lane_client
-- The first client after :after with a ready, unpaused lane (one probe of
-- lanes_client_ready; claims take turns between clients). Whether it is due yet is the
-- take's business: filtering here would read every lane of the client.
SELECT client_id FROM lanes
WHERE ready_at IS NOT NULL AND paused = 0 AND client_id > :after
ORDER BY client_id, ready_at LIMIT 1

-- name: next_free_client
-- The first client after :after with queued non-blocking items (one probe of
-- items_fair_ready; whether they are due is the group's read). Ordered by the index's own
-- leading keys: ordered by client alone, PostgreSQL may walk items_client through every
-- finished item instead.
SELECT client_id FROM items
WHERE status = 'queued' AND lane_id IS NULL AND client_id > :after
ORDER BY client_id, coalesce(connection_id, 0) LIMIT 1

-- name: next_free_group
-- The client's first connection after :after with queued non-blocking items (0: those
-- without a connection); one probe of items_fair_ready.
SELECT coalesce(connection_id, 0) FROM items
WHERE status = 'queued' AND lane_id IS NULL AND client_id = :client_id
  AND coalesce(connection_id, 0) > :after
ORDER BY client_id, coalesce(connection_id, 0) LIMIT 1

-- name: group_due
-- When the earliest queued non-blocking item of one client's connection (0: none) may run;
-- nothing for a connection with a remote runner (in-process workers never run its items).
SELECT run_after FROM items
WHERE status = 'queued' AND lane_id IS NULL AND client_id = :client_id
  AND coalesce(connection_id, 0) = :key
  AND NOT EXISTS (SELECT 1 FROM remote_runners WHERE connection_id = :key)
ORDER BY run_after LIMIT 1

-- name: limited_connections
-- Which of these connections have limits (0), and which have a remote runner (1): one
-- statement, so a claim touching connections learns both in one round trip.
SELECT connection_id, 0 FROM limits WHERE {in_list(connection_id, :ids)}
UNION ALL
SELECT connection_id, 1 FROM remote_runners WHERE {in_list(connection_id, :ids)}

-- name: lock_limits
-- The limits and rate bucket of these limited connections, locked; a connection another
-- claim holds is skipped (its turn comes on the next claim).
SELECT connection_id, max_running, per_second, burst, tokens, tokens_at FROM limits
WHERE {in_list(connection_id, :ids)} ORDER BY connection_id {skip_locked}

-- name: running_of
-- How many items of each of these connections run now, on any worker.
SELECT connection_id, count(*) FROM items
WHERE status = 'running' AND connection_id IS NOT NULL AND {in_list(connection_id, :ids)}
GROUP BY connection_id

-- name: take_lanes
-- These lanes (chosen and locked by client_lanes_due) stop being ready: the claim starts
-- their heads.
UPDATE lanes SET ready_at = NULL WHERE {in_list(id, :ids)}

-- name: defer_lanes
-- These ready lanes (chosen and locked by client_lanes_due) whose connection is at its
-- limits wait until :later, behind the client's other lanes.
UPDATE lanes SET ready_at = :later WHERE {in_list(id, :ids)} AND ready_at IS NOT NULL

-- name: spend_tokens
-- What is left in each connection's rate bucket after this claim; a batch of
-- (connection, tokens). The bucket's clock never goes back: a worker whose clock is
-- behind another's must not make the next one refill what it already spent.
UPDATE limits SET tokens = CAST(d.value->>1 AS DOUBLE PRECISION),
  tokens_at = CASE WHEN tokens_at > CAST(:now AS DOUBLE PRECISION) THEN tokens_at
    ELSE CAST(:now AS DOUBLE PRECISION) END
FROM {json_rows(:batch)}
WHERE limits.connection_id = CAST(d.value->>0 AS BIGINT)

-- name: live_worker_ids
-- The in-process workers not marked stopped, in id order: a worker's place among them
-- decides which lanes it takes first (remote workers never take lanes).
SELECT id FROM workers WHERE stopped_at IS NULL AND remote = 0 ORDER BY id

-- name: settle_done
-- Items done, under the fence (id, attempt, still running under this worker); a batch
-- of (id, attempt, finished_at).
UPDATE items SET status = 'done', finished_at = CAST(d.value->>2 AS DOUBLE PRECISION),
  error = NULL, error_kind = NULL, updated_at = :now
FROM {json_rows(:batch)}
WHERE items.id = CAST(d.value->>0 AS BIGINT) AND items.attempts = CAST(d.value->>1 AS INTEGER)
  AND items.status = 'running' AND {no_index}items.worker_id = :worker_id
RETURNING items.id, items.lane_id

-- name: settle_transient
-- Items to retry later, under the fence; a batch of (id, attempt, run_after, failures,
-- error).
UPDATE items SET status = 'queued', run_after = CAST(d.value->>2 AS DOUBLE PRECISION),
  failures = CAST(d.value->>3 AS INTEGER), error = d.value->>4, error_kind = 'transient',
  worker_id = NULL, updated_at = :now
FROM {json_rows(:batch)}
WHERE items.id = CAST(d.value->>0 AS BIGINT) AND items.attempts = CAST(d.value->>1 AS INTEGER)
  AND items.status = 'running' AND {no_index}items.worker_id = :worker_id
RETURNING items.id, items.lane_id

-- name: settle_failed
-- Items failed for good, under the fence; a batch of (id, attempt, failures, error,
-- error_kind).
UPDATE items SET status = 'failed', failures = CAST(d.value->>2 AS INTEGER),
  error = d.value->>3, error_kind = d.value->>4, worker_id = NULL, updated_at = :now
FROM {json_rows(:batch)}
WHERE items.id = CAST(d.value->>0 AS BIGINT) AND items.attempts = CAST(d.value->>1 AS INTEGER)
  AND items.status = 'running' AND {no_index}items.worker_id = :worker_id
RETURNING items.id, items.lane_id

-- name: insert_attempt
-- An attempt that failed or was lost (a successful one lives on its item's row).
INSERT INTO attempts (item_id, number, worker_id, started_at, ended_at, outcome, error)
VALUES (:item_id, :number, :worker_id, :started_at, :ended_at, :outcome, :error)

-- ===================================================================== remote runners

-- name: put_remote_runner
-- This connection's non-blocking items are claimed only by a remote runner.
INSERT INTO remote_runners (connection_id, client_id, created_at)
VALUES (:connection_id, :client_id, :now)

-- name: remote_runner
-- The client of a connection with a remote runner, and whether the connection is disabled
-- (the operator's stop: its runner is handed nothing).
SELECT r.client_id, CASE WHEN c.status = 'disabled' THEN 1 ELSE 0 END
FROM remote_runners r JOIN connections c ON c.id = r.connection_id
WHERE r.connection_id = :connection_id

-- name: remote_worker
-- A worker's row, locked (as worker_alive): whether it was stopped, and whether remote.
SELECT stopped_at, remote FROM workers WHERE id = :worker_id {for_update}

-- name: register_remote_worker
-- A new remote worker (a remote runner's session); a concurrent first claim of the same
-- session registered it already.
INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at, remote)
VALUES (:id, :hostname, 0, :now, :now, 1)
ON CONFLICT (id) DO NOTHING

-- name: running_under
-- The items running under this remote worker, as jobs: a claim hands them back first (its
-- session never learnt of them if the answer to a claim or a settle was lost).
SELECT id, client_id, instruction, connection_id, lane_id, payload, attempts, failures,
  parent_id, started_at, run_after
FROM items
WHERE status = 'running' AND worker_id = :worker_id
LIMIT :limit

-- name: forget_remote_messages
-- Message ids noted before the cutoff: a request signed that long ago is refused by its
-- timestamp anyway.
DELETE FROM remote_messages WHERE seen_at < :cutoff

-- name: note_remote_message
-- The message id of a remote runner's signed request; no row when the connection's
-- request with that id was taken already (a replay).
INSERT INTO remote_messages (connection_id, message_id, seen_at)
VALUES (:connection_id, :message_id, :now)
ON CONFLICT (connection_id, message_id) DO NOTHING
RETURNING message_id

-- name: held_jobs
-- Those of these items that run under the remote worker, as jobs (a remote settle's
-- outcomes name items by id); none under an in-process worker, whose id can look like a
-- session's.
SELECT id, client_id, instruction, connection_id, lane_id, payload, attempts, failures,
  parent_id, started_at, run_after
FROM items
WHERE {in_list(id, :ids)} AND status = 'running' AND {no_index}worker_id = :worker_id
  AND EXISTS (SELECT 1 FROM workers WHERE id = :worker_id AND remote = 1)

-- ============================================================================= leases

-- name: register_worker
-- A new worker.
INSERT INTO workers (id, hostname, pid, started_at, heartbeat_at)
VALUES (:id, :hostname, :pid, :now, :now)

-- name: heartbeat
-- Extend a live worker's lease.
UPDATE workers SET heartbeat_at = :now WHERE id = :id AND stopped_at IS NULL

-- name: stop_worker
-- Mark a worker gone.
UPDATE workers SET stopped_at = :now, stop_reason = :reason WHERE id = :id

-- name: expire_workers
-- Mark stopped the live workers whose heartbeat is older than the cutoff; their ids.
UPDATE workers SET stopped_at = :now, stop_reason = 'lease expired'
WHERE stopped_at IS NULL AND heartbeat_at < :cutoff
RETURNING id

-- name: orphaned_workers
-- Workers of running items that are gone or stopped (none, unless something crashed).
SELECT DISTINCT i.worker_id FROM items i LEFT JOIN workers w ON w.id = i.worker_id
WHERE i.status = 'running' AND (w.id IS NULL OR w.stopped_at IS NOT NULL)

-- name: held_lanes
-- The lanes of the items these workers run.
SELECT DISTINCT lane_id FROM items
WHERE status = 'running' AND {in_list(worker_id, :workers)} AND lane_id IS NOT NULL

-- name: held_items
-- The items these workers run, locked.
SELECT id, attempts, worker_id, started_at, lane_id FROM items
WHERE status = 'running' AND {in_list(worker_id, :workers)}
ORDER BY id {for_update}

-- name: release_items
-- Running items back to the queue, due now.
UPDATE items SET status = 'queued', run_after = :now, worker_id = NULL, updated_at = :now
WHERE {in_list(id, :ids)}

-- ============================================================================ actions

-- name: action_lanes
-- The lanes of these items of the client.
SELECT DISTINCT lane_id FROM items
WHERE client_id = :client_id AND {in_list(id, :ids)} AND lane_id IS NOT NULL

-- name: action_items
-- These items of the client with their status and lane, locked.
SELECT id, status, lane_id FROM items
WHERE client_id = :client_id AND {in_list(id, :ids)}
ORDER BY id {for_update}

-- name: retry_items
-- Failed items queued again, due now, with their failures forgotten.
UPDATE items SET status = 'queued', run_after = :now, failures = 0, error_kind = NULL,
  updated_at = :now
WHERE {in_list(id, :ids)}

-- name: skip_items
-- Items given up for good.
UPDATE items SET status = 'skipped', finished_at = :now, updated_at = :now
WHERE {in_list(id, :ids)}

-- name: insert_audit
-- Who did what to which item or lane.
INSERT INTO audit (at, client_id, actor, action, item_id, lane_id, detail)
VALUES (:at, :client_id, :actor, :action, :item_id, :lane_id, :detail)

-- ============================================================================== reads

-- name: item
-- An item of the client.
SELECT id, client_id, instruction, blocking, connection_id, lane_id, status, payload, refs,
  description, parent_id, idempotency_key, created_at, updated_at, run_after, attempts,
  failures, worker_id, finished_at, error, error_kind, started_at, coalesce_key,
  superseded_by
FROM items WHERE id = :id AND client_id = :client_id

-- name: items_by_id
-- These items (whoever's).
SELECT id, client_id, instruction, blocking, connection_id, lane_id, status, payload, refs,
  description, parent_id, idempotency_key, created_at, updated_at, run_after, attempts,
  failures, worker_id, finished_at, error, error_kind, started_at, coalesce_key,
  superseded_by
FROM items WHERE {in_list(id, :ids)}

-- name: item_children
-- The first thousand follow-ups an item queued.
SELECT id, client_id, instruction, blocking, connection_id, lane_id, status, payload, refs,
  description, parent_id, idempotency_key, created_at, updated_at, run_after, attempts,
  failures, worker_id, finished_at, error, error_kind, started_at, coalesce_key,
  superseded_by
FROM items WHERE parent_id = :id ORDER BY id LIMIT 1000

-- name: item_attempts
-- An item's failed and lost attempts.
SELECT number, worker_id, started_at, ended_at, outcome, error FROM attempts
WHERE item_id = :id ORDER BY number, id

-- name: item_audit
-- What operators did to an item.
SELECT id, at, actor, action, item_id, lane_id, detail FROM audit
WHERE item_id = :id ORDER BY id

-- name: item_statuses
-- The status of each of these items (whoever's).
SELECT id, status FROM items WHERE {in_list(id, :ids)}

-- name: client_lanes
-- The lanes of a client, with their connection and head.
SELECT l.id AS lane_id, c.kind AS kind, c.description AS description, l.paused AS paused,
  l.pending AS pending, l.head_id AS head_id, l.ready_at AS ready_at,
  i.instruction AS head_instruction, i.status AS head_status, i.error AS head_error,
  i.created_at AS oldest_created_at, i.run_after AS head_run_after,
  i.updated_at AS head_updated_at,
  m.max_running AS max_running, m.per_second AS per_second, m.burst AS burst
FROM lanes l JOIN connections c ON c.id = l.id LEFT JOIN items i ON i.id = l.head_id
  LEFT JOIN limits m ON m.connection_id = l.id
WHERE l.client_id = :client_id ORDER BY l.id

-- name: lanes_by_id
-- These lanes (whoever's), with their connection and head.
SELECT l.id AS lane_id, c.kind AS kind, c.description AS description, l.paused AS paused,
  l.pending AS pending, l.head_id AS head_id, l.ready_at AS ready_at,
  i.instruction AS head_instruction, i.status AS head_status, i.error AS head_error,
  i.created_at AS oldest_created_at, i.run_after AS head_run_after,
  i.updated_at AS head_updated_at,
  m.max_running AS max_running, m.per_second AS per_second, m.burst AS burst
FROM lanes l JOIN connections c ON c.id = l.id LEFT JOIN items i ON i.id = l.head_id
  LEFT JOIN limits m ON m.connection_id = l.id
WHERE {in_list(l.id, :ids)} ORDER BY l.id

-- name: stopped_lanes
-- Every lane whose head failed, with its client: the lanes and the failed items' index.
SELECT l.id AS lane_id, c.kind AS kind, c.description AS description, l.paused AS paused,
  l.pending AS pending, l.head_id AS head_id, l.ready_at AS ready_at,
  i.instruction AS head_instruction, i.status AS head_status, i.error AS head_error,
  i.created_at AS oldest_created_at, i.run_after AS head_run_after,
  i.updated_at AS head_updated_at,
  m.max_running AS max_running, m.per_second AS per_second, m.burst AS burst,
  l.client_id AS client_id
FROM lanes l JOIN items i ON i.id = l.head_id JOIN connections c ON c.id = l.id
  LEFT JOIN limits m ON m.connection_id = l.id
WHERE i.status = 'failed' ORDER BY l.id

-- name: lane_audit
-- Who paused and resumed a lane of the client.
SELECT id, at, actor, action, item_id, lane_id, detail FROM audit
WHERE lane_id = :lane_id AND client_id = :client_id ORDER BY id

-- name: failures_by
-- A client's failed items by instruction and connection (the failed items' index).
SELECT instruction, connection_id, count(*) FROM items
WHERE client_id = :client_id AND status = 'failed'
GROUP BY instruction, connection_id

-- name: queued_by_client
-- Queued items per client.
SELECT client_id, count(*) FROM items WHERE status = 'queued' GROUP BY client_id

-- name: failed_by_client
-- Failed items per client.
SELECT client_id, count(*) FROM items WHERE status = 'failed' GROUP BY client_id

-- name: finished_by_client
-- Items finished (done, skipped, superseded) in [:start, :end) per client.
SELECT client_id, count(*) FROM items
WHERE status IN ('done', 'skipped', 'superseded') AND finished_at >= :start
  AND finished_at < :end
GROUP BY client_id

-- name: unfinished_counts
-- Unfinished items by status and instruction (their partial indexes).
SELECT status, instruction, count(*) FROM items
WHERE status IN ('queued', 'running', 'failed') GROUP BY status, instruction

-- name: lane_heads
-- Each lane's pause and its head's status.
SELECT l.paused, i.status FROM lanes l LEFT JOIN items i ON i.id = l.head_id

-- name: live_workers
-- In-process workers that heartbeat since the cutoff (an agent's session is no worker of
-- ours: counted, it would keep a "no workers" alert quiet while none runs).
SELECT count(*) FROM workers WHERE stopped_at IS NULL AND heartbeat_at > :since AND remote = 0

-- name: queue_summary
-- A client's unfinished items per status and its stopped lanes, exactly, from indexes
-- only (it renders on every console page): a lane's pending counts its queued items
-- plus its head while that runs or failed (the only blocking item that can), so the
-- queued blocking items are the lanes' pending less those heads; queued non-blocking
-- ones are a range of items_fair_ready, failed ones of items_failed, running ones of
-- items_running (`+client_id` keeps SQLite off items_client, a walk of every item).
SELECT
  (SELECT coalesce(sum(l.pending), 0) FROM lanes l WHERE l.client_id = :client_id)
    AS lane_pending,
  (SELECT count(*) FROM lanes l JOIN items i ON i.id = l.head_id
    WHERE l.client_id = :client_id AND i.status IN ('running', 'failed')) AS busy_heads,
  (SELECT count(*) FROM lanes l JOIN items i ON i.id = l.head_id
    WHERE l.client_id = :client_id AND i.status = 'failed') AS blocked_lanes,
  (SELECT count(*) FROM lanes l LEFT JOIN items i ON i.id = l.head_id
    WHERE l.client_id = :client_id AND l.paused = 1
      AND (i.status IS NULL OR i.status <> 'failed')) AS paused_lanes,
  (SELECT count(*) FROM items WHERE client_id = :client_id AND status = 'queued'
    AND lane_id IS NULL) AS free_queued,
  (SELECT count(*) FROM items WHERE +client_id = :client_id AND status = 'running')
    AS running,
  (SELECT count(*) FROM items WHERE client_id = :client_id AND status = 'failed') AS failed

-- name: queued_sharing_refs
-- Queued items of the client of these instructions holding one of these references, with
-- their lane and the reference: what a skip would leave to fail. Driven from item_refs'
-- key, then each item by its id (`+i.client_id`: without statistics SQLite would rather
-- walk every item of the client through items_client).
SELECT i.id AS id, i.lane_id AS lane_id, i.instruction AS instruction, r.ref AS ref
FROM item_refs r JOIN items i ON i.id = r.item_id
WHERE {in_list(r.ref, :refs)} AND +i.client_id = :client_id AND i.status = 'queued'
  AND {in_list(i.instruction, :instructions)}
ORDER BY i.id LIMIT :limit

-- name: refs_in_range
-- How many references of the client are in a prefix's range, counted up to :limit on
-- item_refs_folded alone: whether a search by it is narrow or broad.
SELECT count(*) FROM (
  SELECT 1 FROM item_refs
  WHERE client_id = :client_id AND folded >= :low AND folded < :high LIMIT :limit
) AS found

-- name: failure_groups
-- The client's newest :newest failed items by error text, instruction and connection: how
-- many, the oldest and the newest id of each (the queue page's failures by error). The
-- failed items' partial index (items_failed) from its end and those items' rows, nothing
-- else: a refresh reads at most :newest rows, however many failed (each may hold a
-- traceback of a few KB).
SELECT error, instruction, connection_id, count(*) AS items, min(id) AS first_id,
  max(id) AS last_id
FROM (
  SELECT id, error, instruction, connection_id FROM items
  WHERE client_id = :client_id AND status = 'failed'
  ORDER BY id DESC LIMIT :newest
) AS newest
GROUP BY error, instruction, connection_id
ORDER BY count(*) DESC, min(id)
LIMIT :limit

-- name: lane_next_items
-- The first queued items of a lane of the client, in the order they will run (FIFO by
-- id): items_lane_queued, from its start.
SELECT id, client_id, instruction, blocking, connection_id, lane_id, status, payload, refs,
  description, parent_id, idempotency_key, created_at, updated_at, run_after, attempts,
  failures, worker_id, finished_at, error, error_kind, started_at, coalesce_key,
  superseded_by
FROM items
WHERE lane_id = :lane_id AND client_id = :client_id AND status = 'queued'
ORDER BY lane_id, id LIMIT :limit

-- name: free_next_items
-- The first queued non-blocking items of a client's connection (0: none), in the order
-- they will run (by due time, then id): items_fair_ready, from its start. (Ordered by
-- the index's leading keys too, SQLite sorts the whole group instead.)
SELECT id, client_id, instruction, blocking, connection_id, lane_id, status, payload, refs,
  description, parent_id, idempotency_key, created_at, updated_at, run_after, attempts,
  failures, worker_id, finished_at, error, error_kind, started_at, coalesce_key,
  superseded_by
FROM items
WHERE status = 'queued' AND lane_id IS NULL AND client_id = :client_id
  AND coalesce(connection_id, 0) = :key
ORDER BY run_after, id LIMIT :limit

-- ========================================================================== retention

-- name: prune_items
-- Up to :limit finished items finished before the cutoff, deleted; their ids. The newest
-- item stays: its id is where SQLite's id allocation resumes.
DELETE FROM items WHERE id IN (
  SELECT id FROM items
  WHERE status IN ('done', 'skipped', 'superseded') AND finished_at < :cutoff
    AND id < (SELECT max(id) FROM items)
  LIMIT :limit
)
RETURNING id

-- name: prune_attempts
-- The attempts of deleted items.
DELETE FROM attempts WHERE {in_list(item_id, :ids)}

-- name: prune_refs
-- The references of deleted items.
DELETE FROM item_refs WHERE {in_list(item_id, :ids)}
