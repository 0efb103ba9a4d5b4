-- The dashboard's history (stockyard.samples).

-- name: insert_sample
-- One client's sample of one time slot; racing workers record it once.
INSERT INTO queue_samples (client_id, at, queued, failed, finished)
VALUES (:client_id, :at, :queued, :failed, :finished)
ON CONFLICT (client_id, at) DO NOTHING

-- name: forget_samples
-- Samples older than the history kept.
DELETE FROM queue_samples WHERE at < :before

-- name: samples
-- A client's samples since a time, oldest first.
SELECT at, queued, failed, finished FROM queue_samples
WHERE client_id = :client_id AND at >= :since ORDER BY at

-- name: finished_by_lane
-- A client's blocking items finished since a time, per lane: the lanes page's throughput.
-- Read through items_finished (finished_at, partial on the finished statuses), so it walks
-- only the items that finished in the window, never a lane's history. The unary plus keeps
-- SQLite's planner off items_client, which would walk every item the client ever had.
SELECT lane_id, count(*) AS n FROM items
WHERE status IN ('done', 'skipped', 'superseded') AND finished_at >= :since
  AND +client_id = :client_id AND lane_id IS NOT NULL
GROUP BY lane_id
