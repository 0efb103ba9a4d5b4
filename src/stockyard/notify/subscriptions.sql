-- Who is told of what (stockyard.notify.subscriptions).

-- name: insert_subscription
-- A new subscription of a client; returns its id.
INSERT INTO subscriptions (client_id, kind, target, events, connections, secret, created_at)
VALUES (:client_id, :kind, :target, :events, :connections, :secret, :now)
RETURNING id

-- name: subscription
-- A client's subscription, by id.
SELECT id, client_id, kind, target, events, connections, created_at
FROM subscriptions WHERE id = :id AND client_id = :client_id

-- name: client_subscriptions
-- Every subscription of a client.
SELECT id, client_id, kind, target, events, connections, created_at
FROM subscriptions WHERE client_id = :client_id ORDER BY id

-- name: remove_subscription
-- Removes a client's subscription.
DELETE FROM subscriptions WHERE id = :id AND client_id = :client_id

-- name: subscription_secret
-- A webhook subscription's sealed signing secret.
SELECT secret FROM subscriptions WHERE id = :id
