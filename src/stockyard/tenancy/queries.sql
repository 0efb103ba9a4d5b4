-- Clients, their connections and the audit trail (stockyard.tenancy).

-- name: insert_client
-- A new client of that name; no row when one exists already.
INSERT INTO clients (name, created_at) VALUES (:name, :now)
ON CONFLICT (name) DO NOTHING RETURNING id

-- name: client_named
-- The client of a name.
SELECT id FROM clients WHERE name = :name

-- name: client
-- A client, by id.
SELECT id, name FROM clients WHERE id = :id

-- name: clients
-- Every client, by id.
SELECT id, name FROM clients ORDER BY id

-- name: insert_connection
-- A new connection of a client; returns its id.
INSERT INTO connections (client_id, kind, connector, description, settings, status, created_at)
VALUES (:client_id, :kind, :connector, :description, :settings, :status, :now)
RETURNING id

-- name: connection
-- A connection, by id (whoever's it is: the caller checks the client).
SELECT id, client_id, kind, connector, description, settings, status, secrets
FROM connections WHERE id = :id

-- name: client_connections
-- A client's connections, by id.
SELECT id, client_id, kind, connector, description, settings, status, secrets
FROM connections WHERE client_id = :client_id ORDER BY id

-- name: all_connections
-- Every client's connections, by id (the schedulers of pulls).
SELECT id, client_id, kind, connector, description, settings, status, secrets
FROM connections ORDER BY id

-- name: set_connection_status
-- A connection's status (channels: active once their first full sync ran; disabled).
UPDATE connections SET status = :value WHERE id = :id

-- name: set_connection_settings
-- A connection's settings, a JSON object.
UPDATE connections SET settings = :value WHERE id = :id

-- name: set_connection_description
-- A connection's description, shown in items' descriptions.
UPDATE connections SET description = :value WHERE id = :id

-- name: set_connection_secrets
-- A connection's secrets, sealed by the service (stockyard.sealing).
UPDATE connections SET secrets = :value WHERE id = :id

-- name: insert_audit
-- An audit entry of the layers above the engine (connections, keys, members).
INSERT INTO audit (at, client_id, actor, action, detail)
VALUES (:at, :client_id, :actor, :action, :detail)

-- name: audit_log
-- A client's audit trail, newest first, below an id (paging).
SELECT id, at, actor, action, item_id, lane_id, detail FROM audit
WHERE client_id = :client_id AND id < :before ORDER BY id DESC LIMIT :limit

-- name: audit_window
-- The console's audit page: of a client's newest entries below an id, a hundred pages'
-- worth (audit_client, newest first), those of an actor and action if given, newest
-- first. The window bounds what one page reads however rare the filtered entries are.
SELECT id, at, actor, action, item_id, lane_id, detail FROM (
  SELECT id, at, actor, action, item_id, lane_id, detail FROM audit
  WHERE client_id = :client_id AND id < :before ORDER BY id DESC LIMIT :limit * 100
) AS recent
WHERE (CAST(:actor AS TEXT) IS NULL OR actor = :actor)
  AND (CAST(:action AS TEXT) IS NULL OR action = :action)
ORDER BY id DESC LIMIT :limit

-- name: audit_window_end
-- The lowest id of the same window: where the next page's window starts when the filter
-- left this one short.
SELECT min(id) FROM (
  SELECT id FROM audit WHERE client_id = :client_id AND id < :before
  ORDER BY id DESC LIMIT :limit * 100
) AS recent
