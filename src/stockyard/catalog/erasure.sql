-- Erasing a customer's personal data on request (catalog/erasure.py): the rows that hold
-- it are found by the client and rewritten in place; ids, totals and the queue's order
-- stay. Every statement names the client.

-- name: client_orders_page
-- A page of a client's orders, newest first, before id `before`: the erasure reads them
-- all to find the customer's (their customer is inside the JSON data).
SELECT id, data FROM orders
WHERE client_id = :client_id AND id < :before
ORDER BY id DESC LIMIT :limit

-- name: erase_customer_row
-- A customer's row with its personal fields replaced.
UPDATE customers SET email = NULL, data = :data, updated_at = :now
WHERE id = :id AND client_id = :client_id

-- name: erase_order_row
-- An order's data with its customer's personal fields and addresses replaced.
UPDATE orders SET data = :data, updated_at = :now
WHERE id = :id AND client_id = :client_id

-- name: items_with_ref
-- A client's queue items carrying one of these refs (a customer code, an order's id).
SELECT DISTINCT i.id FROM item_refs r JOIN items i ON i.id = r.item_id
WHERE {in_list(r.ref, :refs)} AND i.client_id = :client_id

-- name: items_containing
-- A client's queue items whose payload or error holds `text`, in any case: one pass over
-- the client's items per text (an erasure is rare; the queue keeps no index of values).
SELECT id FROM items
WHERE client_id = :client_id
  AND ({contains(payload, :text)} OR (error IS NOT NULL AND {contains(error, :text)}))

-- name: items_to_erase
-- The payload and error of a client's items.
SELECT id, payload, error FROM items
WHERE client_id = :client_id AND {in_list(id, :ids)}
ORDER BY id

-- name: erase_item
-- An item's payload and error rewritten without the personal values.
UPDATE items SET payload = :payload, error = :error
WHERE id = :id AND client_id = :client_id

-- name: item_attempt_errors
-- The recorded errors of the attempts of these items (items of one client, checked by
-- the caller's items_to_erase).
SELECT id, error FROM attempts WHERE {in_list(item_id, :ids)} AND error IS NOT NULL

-- name: erase_attempt_error
-- An attempt's error rewritten without the personal values.
UPDATE attempts SET error = :error WHERE id = :id

-- name: record_erasure
-- The audit entry of an erasure, in its transaction: who, when, which code, how much.
INSERT INTO audit (at, client_id, actor, action, item_id, lane_id, detail)
VALUES (:at, :client_id, :actor, 'customer.erase', NULL, NULL, :detail)

-- name: customer_accounts
-- The channels that hold an account of a client's customer, and their ids for it.
SELECT l.channel_id, l.remote_id FROM channel_links l
JOIN connections c ON c.id = l.channel_id
WHERE l.kind = 'customer' AND l.entity_id = :id AND c.client_id = :client_id
ORDER BY l.channel_id
