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
