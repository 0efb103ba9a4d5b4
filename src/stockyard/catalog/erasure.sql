-- Erasing a customer's personal data on request (catalog/erasure.py): the rows that hold
-- it are found by the client and rewritten in place; ids, totals and the queue's order
-- stay. Every statement names the client.

-- name: client_orders_page
-- A page of a client's orders, newest first, before id `before`: the erasure reads them
-- all to find the customer's (their customer is inside the JSON data), with the channel
-- that reported each (whether its customer codes are the ERP's accounts).
SELECT id, channel_id, data FROM orders
WHERE client_id = :client_id AND id < :before
ORDER BY id DESC LIMIT :limit

-- name: erase_customer_row
-- A customer's row with its personal fields replaced (and its code, when it was an
-- email address).
UPDATE customers SET code = :code, folded = :folded, email = NULL, data = :data,
    updated_at = :now
WHERE id = :id AND client_id = :client_id

-- name: unerase_customer_row
-- An erased customer's row without the erased mark: the source's next record is kept.
UPDATE customers SET code = :code, folded = :folded, data = :data, updated_at = :now
WHERE id = :id AND client_id = :client_id

-- name: erase_order_row
-- An order's data with its customer's personal fields and addresses replaced.
UPDATE orders SET data = :data, updated_at = :now
WHERE id = :id AND client_id = :client_id

-- name: items_with_ref
-- A client's queue items carrying one of these refs in any case (`folded`: case-folded;
-- a customer code, an email, an order's id or number), with the ref, the instruction and
-- the connection: the caller keeps an item only when what the ref names is this
-- customer's there (an order's number on the order's channel, an account number on a
-- customer's item).
SELECT i.id, i.instruction, i.connection_id, r.ref FROM item_refs r
JOIN items i ON i.id = r.item_id
WHERE r.client_id = :client_id AND {in_list(r.folded, :folded)} AND i.client_id = :client_id

-- name: client_connections_settings
-- A client's connections, their kind and settings: whose customer codes are the ERP's
-- accounts (a source's; a channel's whose rules take customers).
SELECT id, kind, settings FROM connections WHERE client_id = :client_id ORDER BY id

-- name: items_with_payload_text
-- A client's queue items whose payload holds `text`, in any case: candidates only, each
-- is kept when its parsed payload names the customer (catalog.erasure). One pass over
-- the client's items per text (an erasure is rare; the queue keeps no index of values).
SELECT id FROM items
WHERE client_id = :client_id AND {contains(payload, :text)}

-- name: items_to_erase
-- The connection, payload, error, refs, idempotency and coalescing keys of a client's
-- items.
SELECT id, connection_id, payload, error, refs, idempotency_key, coalesce_key FROM items
WHERE client_id = :client_id AND {in_list(id, :ids)}
ORDER BY id

-- name: erase_item
-- An item's payload, error, refs, idempotency and coalescing keys rewritten without the
-- personal values.
UPDATE items SET payload = :payload, error = :error, refs = :refs, idempotency_key = :key,
    coalesce_key = :coalesce
WHERE id = :id AND client_id = :client_id

-- name: rename_item_ref
-- One of an item's refs that was an email address, replaced by its hash.
UPDATE item_refs SET ref = :ref, folded = :folded
WHERE item_id = :id AND ref = :old AND client_id = :client_id

-- name: item_attempt_errors
-- The recorded errors of the attempts of these items (items of one client, checked by
-- the caller's items_to_erase).
SELECT id, error FROM attempts WHERE {in_list(item_id, :ids)} AND error IS NOT NULL

-- name: erase_attempt_error
-- An attempt's error rewritten without the personal values.
UPDATE attempts SET error = :error WHERE id = :id

-- name: record_erasure
-- The audit entry of an erasure (or its lifting), in its transaction: who, when, which
-- code, how much.
INSERT INTO audit (at, client_id, actor, action, item_id, lane_id, detail)
VALUES (:at, :client_id, :actor, :action, NULL, NULL, :detail)

-- name: customer_accounts
-- The channels that hold an account of a client's customer, and their ids for it.
SELECT l.channel_id, l.remote_id FROM channel_links l
JOIN connections c ON c.id = l.channel_id
WHERE l.kind = 'customer' AND l.entity_id = :id AND c.client_id = :client_id
ORDER BY l.channel_id
