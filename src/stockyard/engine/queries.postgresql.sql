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

-- name: take_ready
-- Up to :limit heads of unpaused lanes that are due, earliest first, skipping lanes
-- another claim holds; their lanes stop being ready (the claim starts them).
UPDATE lanes SET ready_at = NULL
WHERE id = ANY(ARRAY(
  SELECT id FROM lanes WHERE ready_at <= :now AND paused = 0 ORDER BY ready_at LIMIT :limit
  FOR UPDATE SKIP LOCKED
))
RETURNING head_id

-- name: start_free
-- Start up to :limit due items outside lanes, earliest first, skipping items another
-- claim holds, under the worker.
UPDATE items SET status = 'running', worker_id = :worker_id, started_at = :now,
  updated_at = :now, attempts = attempts + 1
WHERE id = ANY(ARRAY(
  SELECT id FROM items WHERE status = 'queued' AND lane_id IS NULL AND run_after <= :now
  ORDER BY run_after, id LIMIT :limit FOR UPDATE SKIP LOCKED
))
RETURNING id, client_id, instruction, connection_id, lane_id, payload, attempts, failures,
  parent_id, started_at, run_after
