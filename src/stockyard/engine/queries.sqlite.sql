-- The engine's statements that differ on SQLite: one writer at a time (BEGIN IMMEDIATE),
-- so claims need no row locks, and ids follow the highest one.

-- name: allocate_ids
-- :count new, increasing item ids, as ranges of consecutive ids (first, last): here one.
-- Under the write lock, and pruning never deletes the newest row, so max(id) + 1 is
-- never handed out twice. (No AUTOINCREMENT: it costs a table write per insert.)
SELECT coalesce(max(id), 0) + 1, coalesce(max(id), 0) + :count FROM items

-- name: client_lanes_due
-- Up to :limit due heads of the client's unpaused lanes, earliest first, taking first the
-- lanes of this worker's share (lane id modulo :workers is :slot) and others' once due
-- before :stale; each lane's id and head.
SELECT id, head_id FROM lanes
WHERE client_id = :client_id AND ready_at IS NOT NULL AND paused = 0
  AND ready_at <= :now AND (id % :workers = :slot OR ready_at <= :stale)
ORDER BY client_id, ready_at LIMIT :limit

-- name: start_group_items
-- Start up to :limit due non-blocking items of one client's connection (0: none),
-- earliest first, under the worker.
UPDATE items SET status = 'running', worker_id = :worker_id, started_at = :now,
  updated_at = :now, attempts = attempts + 1
WHERE id IN (
  SELECT id FROM items
  WHERE status = 'queued' AND lane_id IS NULL AND client_id = :client_id
    AND coalesce(connection_id, 0) = :key AND run_after <= :now
  ORDER BY run_after, id LIMIT :limit
)
RETURNING id, client_id, instruction, connection_id, lane_id, payload, attempts, failures,
  parent_id, started_at, run_after
