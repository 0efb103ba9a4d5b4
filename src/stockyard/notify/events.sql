-- What has been noticed of the queue's events (stockyard.notify.events).

-- name: notice
-- Marks an event noticed (a lane's stop, a daily summary); once per key.
INSERT INTO notices (key, client_id, lane_id, item_id, open, created_at)
VALUES (:key, :client_id, :lane_id, :item_id, :open, :now)
ON CONFLICT (key) DO NOTHING

-- name: noticed
-- Which of these keys are noticed already.
SELECT key FROM notices WHERE {in_list(key, :keys)}

-- name: is_noticed
-- Whether this key is noticed already.
SELECT 1 AS noticed FROM notices WHERE key = :key

-- name: open_stops
-- The stops of lanes not yet seen resumed.
SELECT key, client_id, lane_id, item_id FROM notices WHERE open = 1

-- name: close_stop
-- A stopped lane moved on: its stop is closed.
UPDATE notices SET open = 0 WHERE key = :key

-- name: note_failures
-- Every non-blocking failure not noted yet, grouped by its kind (client, instruction,
-- connection). Reads the failed items' partial index; notification items are left out.
INSERT INTO failure_notices (item_id, attempts, client_id, kind, failed_at)
SELECT i.id, i.attempts, i.client_id,
       i.client_id || ':' || i.instruction || ':' || COALESCE(CAST(i.connection_id AS TEXT), ''),
       i.updated_at
FROM items i
WHERE i.status = 'failed' AND i.blocking = 0 AND NOT {in_list(i.instruction, :internal)}
  AND NOT EXISTS (SELECT 1 FROM failure_notices f WHERE f.item_id = i.id AND f.attempts = i.attempts)
ON CONFLICT (item_id, attempts) DO NOTHING

-- name: due_failure_kinds
-- The kinds of failure whose oldest unsent one is old enough to send.
SELECT kind FROM failure_notices WHERE sent = 0 GROUP BY kind HAVING min(failed_at) <= :before

-- name: unsent_failures
-- The unsent failures of a kind.
SELECT item_id FROM failure_notices WHERE kind = :kind AND sent = 0

-- name: failed_items
-- The items of a digest, with their connection's description.
SELECT i.id, i.client_id, i.instruction, i.connection_id, i.description, i.error, i.refs,
       c.description AS connection
FROM items i LEFT JOIN connections c ON c.id = i.connection_id
WHERE {in_list(i.id, :ids)} ORDER BY i.id

-- name: mark_failures_sent
-- A digest's failures are sent.
UPDATE failure_notices SET sent = 1 WHERE kind = :kind AND sent = 0 AND {in_list(item_id, :ids)}

-- name: failed_by_client
-- Failed items per client and instruction (the daily summaries), notification items left out.
SELECT client_id, instruction, count(*) AS n FROM items
WHERE status = 'failed' AND NOT {in_list(instruction, :internal)}
GROUP BY client_id, instruction

-- name: forget_notices
-- Closed notices older than a time.
DELETE FROM notices WHERE open = 0 AND created_at < :before

-- name: forget_failures
-- Sent failure notices older than a time, unless their item is still failed at that attempt.
DELETE FROM failure_notices WHERE sent = 1 AND failed_at < :before AND NOT EXISTS
  (SELECT 1 FROM items i WHERE i.id = failure_notices.item_id
   AND i.status = 'failed' AND i.attempts = failure_notices.attempts)
