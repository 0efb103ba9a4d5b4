-- The catalog's tables (migration 0002): every query is one statement on a key or an index.

-- name: upsert_product
-- Writes a product as its source sent it; returns its id.
INSERT INTO products (client_id, source_id, code, folded, title, data, deleted, created_at,
                      updated_at)
VALUES (:client_id, :source_id, :code, :folded, :title, :data, :deleted, :now, :now)
ON CONFLICT (client_id, code) DO UPDATE SET
    folded = excluded.folded,
    source_id = excluded.source_id,
    title = excluded.title,
    data = excluded.data,
    deleted = excluded.deleted,
    updated_at = excluded.updated_at
RETURNING id

-- name: upsert_variant
-- Writes one variant of a product, live again if it was removed.
INSERT INTO variants (client_id, product_id, sku, folded, position, data, deleted, created_at,
                      updated_at)
VALUES (:client_id, :product_id, :sku, :folded, :position, :data, 0, :now, :now)
ON CONFLICT (client_id, sku) DO UPDATE SET
    folded = excluded.folded,
    product_id = excluded.product_id,
    position = excluded.position,
    data = excluded.data,
    deleted = 0,
    updated_at = excluded.updated_at

-- name: remove_other_variants
-- Marks removed the variants of a product its source no longer lists.
UPDATE variants SET deleted = 1, updated_at = :now
WHERE product_id = :product_id AND deleted = 0 AND NOT {in_list(sku, :skus)}

-- name: upsert_image
-- Writes one image of a product at its position, live again if it was removed.
INSERT INTO images (client_id, product_id, code, position, data, deleted, created_at, updated_at)
VALUES (:client_id, :product_id, :code, :position, :data, 0, :now, :now)
ON CONFLICT (product_id, code) DO UPDATE SET
    position = excluded.position,
    data = excluded.data,
    deleted = 0,
    updated_at = excluded.updated_at

-- name: replace_image
-- Adds an image to a product (at `position`, the end) or replaces it, keeping its place.
INSERT INTO images (client_id, product_id, code, position, data, deleted, created_at, updated_at)
VALUES (:client_id, :product_id, :code, :position, :data, 0, :now, :now)
ON CONFLICT (product_id, code) DO UPDATE SET
    data = excluded.data,
    deleted = 0,
    updated_at = excluded.updated_at

-- name: image_count
-- How many images a product has, removed ones included: the position of a new one.
SELECT count(*) AS n FROM images WHERE product_id = :product_id

-- name: remove_other_images
-- Marks removed the images of a product its source no longer lists.
UPDATE images SET deleted = 1, updated_at = :now
WHERE product_id = :product_id AND deleted = 0 AND NOT {in_list(code, :codes)}

-- name: product_id
-- The id of a client's product, by its code.
SELECT id FROM products WHERE client_id = :client_id AND code = :code

-- name: product
-- A client's product, by id.
SELECT code, data, deleted FROM products WHERE id = :id AND client_id = :client_id

-- name: product_variants
-- Every variant of a product, removed ones included, in the source's order.
SELECT id, data, deleted FROM variants WHERE product_id = :product_id ORDER BY position, id

-- name: product_images
-- Every image of a product, removed ones included, in the source's order.
SELECT id, data, deleted FROM images WHERE product_id = :product_id ORDER BY position, id

-- name: product_summaries
-- Id, code, fields and deleted flag of every product of a client: what channel
-- fan-outs filter on.
SELECT id, code, data, deleted FROM products WHERE client_id = :client_id ORDER BY id

-- name: list_products
-- A page of a client's products by code, after `after`.
SELECT id, code, title, deleted, updated_at FROM products
WHERE client_id = :client_id AND code > :after
ORDER BY code LIMIT :limit

-- name: list_variants
-- A page of a client's variants by SKU, after `after`, with their product's code.
SELECT v.id, v.sku, v.product_id, p.code AS product_code, v.data, v.deleted
FROM variants v JOIN products p ON p.id = v.product_id
WHERE v.client_id = :client_id AND v.sku > :after
ORDER BY v.sku LIMIT :limit

-- name: list_orders
-- A page of a client's orders, newest first, before id `before`.
SELECT id, client_id, channel_id, state, paid, source_code, data FROM orders
WHERE client_id = :client_id AND id < :before
ORDER BY id DESC LIMIT :limit

-- name: list_fulfillments
-- A page of a client's fulfillments, newest first, before id `before`.
SELECT id, client_id, order_id, service_id, remote_id, state, data FROM fulfillments
WHERE client_id = :client_id AND id < :before
ORDER BY id DESC LIMIT :limit

-- name: upsert_customer
-- Writes a customer as its source sent it; returns its id.
INSERT INTO customers (client_id, code, folded, email, data, created_at, updated_at)
VALUES (:client_id, :code, :folded, :email, :data, :now, :now)
ON CONFLICT (client_id, code) DO UPDATE SET
    folded = excluded.folded,
    email = excluded.email,
    data = excluded.data,
    updated_at = excluded.updated_at
RETURNING id

-- name: customer
-- A client's customer, by id.
SELECT id, code, email, data FROM customers WHERE id = :id AND client_id = :client_id

-- name: customer_by_code
-- A client's customer, by the source's code for it (a trade account number).
SELECT id, code, email, data FROM customers WHERE client_id = :client_id AND code = :code

-- name: links
-- What a channel holds of some entities of a kind: remote id and content hash.
SELECT entity_id, remote_id, hash FROM channel_links
WHERE channel_id = :channel_id AND kind = :kind AND {in_list(entity_id, :entity_ids)}

-- name: linked
-- Every entity of a kind a channel holds, with its remote id.
SELECT entity_id, remote_id FROM channel_links
WHERE channel_id = :channel_id AND kind = :kind
ORDER BY entity_id

-- name: link
-- Records that a channel holds an entity, under a remote id.
INSERT INTO channel_links (channel_id, kind, entity_id, remote_id, hash, updated_at)
VALUES (:channel_id, :kind, :entity_id, :remote_id, :hash, :now)
ON CONFLICT (channel_id, kind, entity_id) DO UPDATE SET
    remote_id = excluded.remote_id,
    hash = excluded.hash,
    updated_at = excluded.updated_at

-- name: unlink
-- Forgets that a channel holds an entity.
DELETE FROM channel_links
WHERE channel_id = :channel_id AND kind = :kind AND entity_id = :entity_id

-- name: clear_links
-- Forgets everything a channel holds; returns the entities forgotten.
DELETE FROM channel_links WHERE channel_id = :channel_id RETURNING entity_id

-- name: order_id
-- The id of a channel's order, by the channel's id for it.
SELECT id FROM orders WHERE channel_id = :channel_id AND remote_id = :remote_id

-- name: order_report
-- A channel's order as stored, by the channel's id for it: what a new report of it
-- replaces (an erased customer stays erased, catalog.store).
SELECT id, data FROM orders WHERE channel_id = :channel_id AND remote_id = :remote_id

-- name: update_order_report
-- Writes what the channel reports anew of an order it reported before.
UPDATE orders SET number = :number, total = :total, data = :data, updated_at = :now
WHERE id = :id

-- name: insert_order
-- Stores a new order a channel reported; returns its id.
INSERT INTO orders (client_id, channel_id, remote_id, number, state, total, data,
                    created_at, updated_at)
VALUES (:client_id, :channel_id, :remote_id, :number, 'new', :total, :data, :now, :now)
RETURNING id

-- name: order
-- A client's order, by id.
SELECT id, client_id, channel_id, state, paid, source_code, data FROM orders
WHERE id = :id AND client_id = :client_id

-- name: update_order
-- Sets an order's state, payment or source code: each only where its `set_` flag is true.
UPDATE orders SET
    state = CASE WHEN :set_state THEN :state ELSE state END,
    paid = CASE WHEN :set_paid THEN :paid ELSE paid END,
    source_code = CASE WHEN :set_source_code THEN :source_code ELSE source_code END,
    updated_at = :now
WHERE id = :id

-- name: fulfillment_id
-- The id of a service's fulfillment, by the service's id for it.
SELECT id FROM fulfillments WHERE service_id = :service_id AND remote_id = :remote_id

-- name: insert_fulfillment
-- Stores a new fulfillment of an order; returns its id.
INSERT INTO fulfillments (client_id, order_id, service_id, remote_id, state, data,
                          created_at, updated_at)
VALUES (:client_id, :order_id, :service_id, :remote_id, :state, '{}', :now, :now)
RETURNING id

-- name: fulfillment
-- A client's fulfillment, by id.
SELECT id, client_id, order_id, service_id, remote_id, state, data FROM fulfillments
WHERE id = :id AND client_id = :client_id

-- name: fulfillment_by_remote
-- A service's fulfillment, by the service's id for it.
SELECT id, client_id, order_id, service_id, remote_id, state, data FROM fulfillments
WHERE service_id = :service_id AND remote_id = :remote_id

-- name: order_fulfillments
-- Every fulfillment of an order, oldest first.
SELECT id, client_id, order_id, service_id, remote_id, state, data FROM fulfillments
WHERE order_id = :order_id ORDER BY id

-- name: update_fulfillment
-- Sets a fulfillment's state and tracking.
UPDATE fulfillments SET state = :state, data = :data, updated_at = :now WHERE id = :id

-- name: connection_state
-- One value a connection keeps between runs (a cursor, a schedule).
SELECT value, next_at, item_id FROM connection_state
WHERE connection_id = :connection_id AND key = :key

-- name: set_connection_state
-- Writes one value a connection keeps between runs.
INSERT INTO connection_state (connection_id, key, value, next_at, item_id)
VALUES (:connection_id, :key, :value, :next_at, :item_id)
ON CONFLICT (connection_id, key) DO UPDATE SET
    value = excluded.value,
    next_at = excluded.next_at,
    item_id = excluded.item_id

-- Finding the catalog from what an operator typed (the console's search, an item's refs).
-- A prefix in any case is a range [lo, hi) of `folded` (the key case-folded by Python's
-- casefold, migration 0009) on the (client_id, folded) indexes; on PostgreSQL the column
-- collates "C", so the range holds every key with the prefix whatever the locale.

-- name: products_in_range
-- A client's products whose folded code lies in [lo, hi), by it.
SELECT id, code, title, deleted, updated_at FROM products
WHERE client_id = :client_id AND folded >= :lo AND folded < :hi
ORDER BY folded LIMIT :limit

-- name: variants_in_range
-- A client's variants whose folded SKU lies in [lo, hi), by it, with their product's code.
SELECT v.id, v.sku, v.product_id, p.code AS product_code, v.data, v.deleted
FROM variants v JOIN products p ON p.id = v.product_id
WHERE v.client_id = :client_id AND v.folded >= :lo AND v.folded < :hi
ORDER BY v.folded LIMIT :limit

-- name: customers_in_range
-- A client's customers whose folded code lies in [lo, hi), by it.
SELECT id, code, email, data FROM customers
WHERE client_id = :client_id AND folded >= :lo AND folded < :hi
ORDER BY folded LIMIT :limit

-- name: variant_product_id
-- The product of a client's variant, by SKU.
SELECT product_id FROM variants WHERE client_id = :client_id AND sku = :sku

-- name: channel_order
-- A client's order on one channel, by the channel's id for it.
SELECT id, client_id, channel_id, state, paid, source_code, data FROM orders
WHERE channel_id = :channel_id AND remote_id = :remote_id AND client_id = :client_id

-- name: orders_numbered
-- A client's orders with this number, newest first: a probe of orders_number.
SELECT id, client_id, channel_id, state, paid, source_code, data FROM orders
WHERE client_id = :client_id AND number = :number
ORDER BY id DESC LIMIT :limit
