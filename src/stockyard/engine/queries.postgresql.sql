-- The engine's statements that differ on PostgreSQL: claims skip rows another
-- transaction holds (SKIP LOCKED), and ids come from the items' sequence.
-- A subquery's ids go through an array (`= ANY(ARRAY(...))`): they then drive primary-key
-- lookups, where `IN (...)` may hash-join the whole table on small or stale statistics.

-- name: allocate_ids
-- :count new item ids from the sequence, as ranges of consecutive ids (first, last): here
-- each id its own, as other sessions may draw ids at the same time. (Merging runs with a
-- window costs 30 us of planning per single-item enqueue, more than it saves.) Drawn
-- while the lanes are locked: within a lane, ids increase in commit order.
SELECT n, n FROM (SELECT nextval('items_id_seq') AS n FROM generate_series(1, :count)) AS drawn

-- name: client_lanes_due
-- Up to :limit due heads of the client's unpaused lanes, earliest first, taking first the
-- lanes of this worker's share (lane id modulo :workers is :slot) and others' once due
-- before :stale, locked; lanes another claim holds are skipped. Each lane's id and head.
SELECT id, head_id FROM lanes
WHERE client_id = :client_id AND ready_at IS NOT NULL AND paused = 0
  AND ready_at <= :now AND (id % :workers = :slot OR ready_at <= :stale)
ORDER BY client_id, ready_at LIMIT :limit
FOR UPDATE SKIP LOCKED

-- name: start_group_items
-- Start up to :limit due non-blocking items of one client's connection (0: none),
-- earliest first, under the worker, skipping items another claim holds.
UPDATE items SET status = 'running', worker_id = :worker_id, started_at = :now,
  updated_at = :now, attempts = attempts + 1
WHERE id = ANY(ARRAY(
  SELECT id FROM items
  WHERE status = 'queued' AND lane_id IS NULL AND client_id = :client_id
    AND coalesce(connection_id, 0) = :key AND run_after <= :now
  ORDER BY run_after, id LIMIT :limit
  FOR UPDATE SKIP LOCKED
))
RETURNING id, client_id, instruction, connection_id, lane_id, payload, attempts, failures,
  parent_id, started_at, run_after
