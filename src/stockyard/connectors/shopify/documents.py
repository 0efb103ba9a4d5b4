"""Every GraphQL document the `shopify` connector sends, in one place: the unit test
tests/test_shopify_schema.py validates each of them against Shopify's own Admin schema
(the pinned `schema.API_VERSION`), so a typo fails without a server.

Page sizes are chosen so that a document's requested cost stays well under Shopify's
1,000-point limit per query: nested connections multiply (outer `first` x inner `first`).
docs/shopify-notes.md has the figures the test double computes for them.
"""

from __future__ import annotations

# The Admin API version these documents are written for and validated against (the
# connector's default `api_version`; `schema.API_VERSION` is the same).
API_VERSION = "2026-07"

# --- Products -------------------------------------------------------------------------

# Create or update a whole product, found by handle. List fields (variants, options,
# collections, metafields, files) are replaced: an entry left out is deleted.
PRODUCT_SET = """
mutation ProductSet($identifier: ProductSetIdentifiers, $input: ProductSetInput!) {
  productSet(identifier: $identifier, input: $input, synchronous: true) {
    product {
      id
      handle
      variants(first: 250) { nodes { id sku inventoryItem { id } } }
    }
    userErrors { field message code }
  }
}"""

# Product-level fields of an existing product only (no list field but tags is sent, so
# no variant, option or file is touched).
PRODUCT_SET_FIELDS = """
mutation ProductSetFields($identifier: ProductSetIdentifiers, $input: ProductSetInput!) {
  productSet(identifier: $identifier, input: $input, synchronous: true) {
    product { id }
    userErrors { field message code }
  }
}"""

# productCreate takes no variants (the product model since 2024-04): it makes the product
# with its options and one standalone variant, which productVariantsBulkCreate replaces.
PRODUCT_CREATE = """
mutation ProductCreate($product: ProductCreateInput!, $media: [CreateMediaInput!]) {
  productCreate(product: $product, media: $media) {
    product { id handle options { id name optionValues { id name } } }
    userErrors { field message }
  }
}"""

VARIANTS_BULK_CREATE = """
mutation VariantsCreate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkCreate(
    productId: $productId, variants: $variants, strategy: REMOVE_STANDALONE_VARIANT
  ) {
    productVariants { id sku inventoryItem { id } }
    userErrors { field message code }
  }
}"""

# Variants added to a product that already has real ones: the others stay.
VARIANTS_BULK_ADD = """
mutation VariantsAdd($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkCreate(productId: $productId, variants: $variants, strategy: DEFAULT) {
    productVariants { id sku inventoryItem { id } }
    userErrors { field message code }
  }
}"""

# One product's variants at a time (price change in the ERP -> one call).
VARIANTS_BULK_UPDATE = """
mutation VariantsUpdate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id sku price compareAtPrice barcode inventoryItem { id } }
    userErrors { field message code }
  }
}"""

PRODUCTS_BY_SKU = """
query VariantsBySku($query: String!) {
  productVariants(first: 250, query: $query) {
    nodes { id sku product { id handle } inventoryItem { id } }
  }
}"""

# Which product holds any of these SKUs (Shopify's search is not exact: the connector
# compares the SKUs itself). 50 x (variant + product) stays near 150 points.
VARIANTS_BY_SKU = """
query VariantsBySkuFirst($query: String!) {
  productVariants(first: 50, query: $query) {
    nodes { id sku product { id } }
  }
}"""

# One product's variants, paged (a product may have up to 2,048).
PRODUCT_VARIANTS = """
query ProductVariants($id: ID!, $after: String) {
  product(id: $id) {
    id
    variants(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id sku selectedOptions { name value } inventoryItem { id } }
    }
  }
}"""

# The first page of a product's variants: most products hold a few, and a query is
# charged for the page it asks for (303 points for 100 by the double's rule, 33 for 10;
# Shopify refunds the unused part, but the bucket must hold the requested cost first).
# A product with more goes on with PRODUCT_VARIANTS.
PRODUCT_VARIANTS_FIRST = PRODUCT_VARIANTS.replace(
    "ProductVariants(", "ProductVariantsFirst(", 1
).replace("first: 100", "first: 10", 1)

# The product under a handle (productByHandle is deprecated in 2026-07: "Use
# `productByIdentifier` instead"). Only what tells whether Stockyard made it: 1 point by
# the double's rule; its variants are read (PRODUCT_VARIANTS) only when there is one.
PRODUCT_BY_HANDLE = """
query ProductByHandle($handle: String!) {
  productByIdentifier(identifier: {handle: $handle}) { id title }
}"""

PRODUCT_EXISTS = """
query ProductExists($id: ID!) {
  product(id: $id) { id }
}"""

PRODUCT_DELETE = """
mutation ProductDelete($input: ProductDeleteInput!) {
  productDelete(input: $input) { deletedProductId userErrors { field message } }
}"""

# One variant (or several) of one product; the product keeps at least one (Shopify's
# CANNOT_DELETE_LAST_VARIANT).
VARIANTS_BULK_DELETE = """
mutation VariantsDelete($productId: ID!, $ids: [ID!]!) {
  productVariantsBulkDelete(productId: $productId, variantsIds: $ids) {
    product { id }
    userErrors { field message code }
  }
}"""

# Whether a variant still exists, and where (a delete that answered an error may have
# been done already).
VARIANT_EXISTS = """
query VariantExists($id: ID!) {
  productVariant(id: $id) { id product { id } }
}"""

# --- Images (product media) -----------------------------------------------------------

# A product's media; `image` is null while Shopify still processes a new one. 100 per
# product read (Shopify allows 250 media per product).
PRODUCT_MEDIA = """
query ProductMedia($id: ID!) {
  product(id: $id) {
    id
    media(first: 100) {
      nodes {
        id
        alt
        status
        mediaErrors { code message }
        ... on MediaImage { image { url } }
      }
    }
  }
}"""

# productCreateMedia is deprecated ("Use productUpdate or productSet instead"): media go
# through productUpdate(media:), which adds them (it does not replace the others).
PRODUCT_ADD_MEDIA = """
mutation ProductAddMedia($product: ProductUpdateInput!, $media: [CreateMediaInput!]) {
  productUpdate(product: $product, media: $media) {
    product {
      id
      media(first: 100) {
        nodes { id alt status ... on MediaImage { image { url } } }
      }
    }
    userErrors { field message }
  }
}"""

# productDeleteMedia is deprecated ("Use fileUpdate instead"); fileDelete removes the file
# from the product and from the shop's Files, which Stockyard created for this product.
FILE_DELETE = """
mutation FileDelete($ids: [ID!]!) {
  fileDelete(fileIds: $ids) {
    deletedFileIds
    userErrors { field message code }
  }
}"""

# --- Stock ----------------------------------------------------------------------------

# Compare-and-set per location: changeFromQuantity must be given (null skips the check);
# the idempotency key (required from 2026-04, by the field's description) makes a repeat
# harmless.
INVENTORY_SET = """
mutation InventorySet($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      id
      changes { name delta quantityAfterChange item { id } location { id } }
    }
    userErrors { field message code }
  }
}"""

# The quantities read before a compare-and-set, and again after CHANGE_FROM_QUANTITY_STALE.
# 10 levels per item: the connector asks for at most INVENTORY_ITEMS_PER_READ items.
INVENTORY_LEVELS = """
query InventoryLevels($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      sku
      inventoryLevels(first: 10) {
        pageInfo { hasNextPage }
        nodes { location { id } quantities(names: ["available", "on_hand"]) { name quantity } }
      }
    }
  }
}"""

# One item's level at one location: for an item stocked at more than the 10 locations
# INVENTORY_LEVELS reads (null: not stocked there).
INVENTORY_LEVEL_AT = """
query InventoryLevelAt($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    id
    inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
  }
}"""

# An inventory item not stocked at a location yet gets its level there, with its first
# quantity (the idempotency key is required from 2026-04, by the field's description).
INVENTORY_ACTIVATE = """
mutation InventoryActivate($item: ID!, $location: ID!, $available: Int, $key: String!) {
  inventoryActivate(inventoryItemId: $item, locationId: $location, available: $available)
    @idempotent(key: $key) {
    inventoryLevel { id location { id } quantities(names: ["available"]) { name quantity } }
    userErrors { field message }
  }
}"""

# --- Orders in (not used yet) ---------------------------------------------------------

# 10 orders x 20 lines: 852 points by the double's rule (50 x 250 would be 50,252). An
# order with more lines needs its lineItems paged separately.
ORDERS_UPDATED_SINCE = """
query Orders($query: String!, $after: String) {
  orders(first: 10, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      name
      createdAt
      updatedAt
      cancelledAt
      email
      currencyCode
      displayFinancialStatus
      displayFulfillmentStatus
      totalPriceSet { shopMoney { amount currencyCode } }
      shippingAddress { name address1 address2 city zip countryCodeV2 phone }
      lineItems(first: 20) {
        nodes {
          id
          sku
          quantity
          variant { id }
          originalUnitPriceSet { shopMoney { amount currencyCode } }
        }
      }
    }
  }
}"""

# --- Fulfillments out (not used yet) --------------------------------------------------

# 5 fulfillment orders x 20 lines (20 x 250 would be 10,082 points).
ORDER_FULFILLMENT_ORDERS = """
query OrderFulfillmentOrders($id: ID!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: 5) {
      nodes {
        id
        status
        assignedLocation { location { id } }
        lineItems(first: 20) {
          nodes { id sku remainingQuantity totalQuantity lineItem { id } }
        }
      }
    }
  }
}"""

FULFILLMENT_ORDERS = """
query FulfillmentOrders($query: String!, $after: String) {
  fulfillmentOrders(first: 50, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id status orderId updatedAt }
  }
}"""

FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo { company number url } }
    userErrors { field message }
  }
}"""

# The order's fulfillment orders with what is left to ship per line, paged: 5 x 20 lines;
# a fulfillment order with more lines is read on with FULFILLMENT_ORDER_LINES. Repeats
# are told by the order's ledger (ORDER_FULFILLMENT_LEDGER), not by these.
ORDER_FULFILLMENT_ORDERS_PAGE = """
query OrderFulfillmentOrdersPage($id: ID!, $after: String) {
  order(id: $id) {
    id
    name
    displayFulfillmentStatus
    fulfillmentOrders(first: 5, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        status
        assignedLocation { location { id } }
        lineItems(first: 20) {
          pageInfo { hasNextPage endCursor }
          nodes { id sku remainingQuantity totalQuantity }
        }
      }
    }
  }
}"""

FULFILLMENT_ORDER_LINES = """
query FulfillmentOrderLines($id: ID!, $after: String) {
  fulfillmentOrder(id: $id) {
    id
    lineItems(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id sku remainingQuantity totalQuantity }
    }
  }
}"""

# --- Bulk (not used yet) --------------------------------------------------------------

STAGED_UPLOADS_CREATE = """
mutation StagedUploads($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}"""

# The mutation run once per JSONL line (each line: its variables).
BULK_PRODUCT_SET = """
mutation ProductSet($identifier: ProductSetIdentifiers, $input: ProductSetInput!) {
  productSet(identifier: $identifier, input: $input) {
    product { id handle }
    userErrors { field message code }
  }
}"""

BULK_RUN_MUTATION = """
mutation BulkRun($mutation: String!, $path: String!, $client: String) {
  bulkOperationRunMutation(
    mutation: $mutation, stagedUploadPath: $path, clientIdentifier: $client
  ) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""

BULK_OPERATION = """
query BulkOperation($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl completedAt
  }
}"""


# --- Bulk product writes (stockyard.connectors.shopify.bulk) ---------------------------

# The mutation a bulk operation runs once per JSONL line (each line: its variables). The
# bulk runner renames the operation after the item (StockyardBulkProductSet_<tag>) so a
# later attempt can recognise its own operation among the shop's (BulkOperation has no
# clientIdentifier field to read back). productSet: a retry of a line sets the same
# product again (by id, or by handle) instead of duplicating it. The variants' ids and SKUs
# come back so the flow can link them.
BULK_PRODUCT_SET_LINKED = """
mutation StockyardBulkProductSet($identifier: ProductSetIdentifiers, $input: ProductSetInput!) {
  productSet(identifier: $identifier, input: $input) {
    product { id handle variants(first: 250) { nodes { id sku } } }
    userErrors { field message code }
  }
}"""

# The app's latest bulk mutations, newest first (the field's default order): is one still
# running, and is one of them this item's own from an earlier attempt?
BULK_MUTATIONS_RECENT = """
query BulkMutationsRecent {
  bulkOperations(first: 10, query: "operation_type:mutation") {
    nodes { id status errorCode query url partialDataUrl objectCount createdAt completedAt }
  }
}"""

# What the shop holds, read once per bulk chunk before its mutation (a bulk query: every
# product's handle and its variants' SKUs, without one search per product). No `first`:
# a bulk query reads each connection whole. The runner renames the operation after the
# item (StockyardBulkSkus_<tag>) so a later attempt finds its export again.
BULK_EXPORT_SKUS = """
query StockyardBulkSkus {
  products {
    edges { node { id handle variants { edges { node { id sku } } } } }
  }
}"""

# groupObjects: false is the faster, documented default; it is passed because the 2026-07
# introspection gives the non-null argument no default value.
BULK_RUN_QUERY = """
mutation BulkRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status createdAt }
    userErrors { field message code }
  }
}"""

# The app's latest bulk queries, newest first: this item's export, if an earlier attempt
# started one.
BULK_QUERIES_RECENT = """
query BulkQueriesRecent {
  bulkOperations(first: 10, query: "operation_type:query") {
    nodes { id status errorCode query url partialDataUrl objectCount createdAt completedAt }
  }
}"""


# --- Orders in (stockyard.connectors.shopify.orders) ----------------------------------

ORDER_IN_LINE = """
fragment StockyardLine on LineItem {
  id
  sku
  title
  quantity
  currentQuantity
  originalUnitPriceSet { shopMoney { amount } }
  discountAllocations { allocatedAmountSet { shopMoney { amount } } }
  taxLines { priceSet { shopMoney { amount } } }
}"""

# What Stockyard reads of an order: the same fields for the poll, the single read and the
# webhook path (which fetches by id), so one order maps to the same record whichever way
# it came. Amounts in the shop's currency (shopMoney), after edits, returns and refunds
# (current*). Lines carry what nets their price: the discounts allocated to them (code and
# order-level ones included, unlike discountedUnitPriceSet) and their taxes, which are
# inside the price when the shop's prices include tax (taxesIncluded); shipping likewise.
# `ledger` is Stockyard's fulfillment ledger (connectors/shopify/fulfillments.py): an order
# Stockyard shipped carries it.
ORDER_IN_FIELDS = (
    """
fragment StockyardOrder on Order {
  id
  name
  updatedAt
  cancelledAt
  test
  email
  phone
  currencyCode
  displayFinancialStatus
  displayFulfillmentStatus
  taxesIncluded
  customer { id displayName }
  currentTotalPriceSet { shopMoney { amount } }
  currentTotalTaxSet { shopMoney { amount } }
  currentShippingPriceSet { shopMoney { amount } }
  shippingLines(first: 2) { nodes { taxLines { priceSet { shopMoney { amount } } } } }
  ledger: metafield(namespace: "stockyard", key: "fulfillments") { id }
  shippingAddress { ...StockyardAddress }
  billingAddress { ...StockyardAddress }
  lineItems(first: 5) { pageInfo { hasNextPage endCursor } nodes { ...StockyardLine } }
}
fragment StockyardAddress on MailingAddress {
  name company address1 address2 city province zip countryCodeV2 phone
}"""
    + ORDER_IN_LINE
)

# 10 orders x 5 lines a page (the amounts make a line cost 9 points in the double's model:
# 10 x 20 lines would pass Shopify's 1,000-point cap per query); an order with more lines
# reads them on with ORDER_IN_LINES, 50 a page.
ORDERS_IN_SINCE = (
    """
query StockyardOrdersSince($query: String!, $after: String) {
  orders(first: 10, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...StockyardOrder }
  }
}"""
    + ORDER_IN_FIELDS
)

ORDER_IN = (
    """
query StockyardOrder($id: ID!) {
  order(id: $id) { ...StockyardOrder }
}"""
    + ORDER_IN_FIELDS
)

ORDER_IN_LINES = (
    """
query StockyardOrderLines($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...StockyardLine }
    }
  }
}"""
    + ORDER_IN_LINE
)


# --- Stockyard's marks (metafields) ----------------------------------------------------

# Shopify keeps no reference of ours on a media or a fulfillment; metafields are the one
# place it keeps ours (*schema*: MetafieldOwnerType MEDIA_IMAGE, Order is HasMetafields).
METAFIELDS_SET = """
mutation MetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key }
    userErrors { field message code }
  }
}"""

# PRODUCT_MEDIA with each image's Stockyard mark (the source URL it was added from).
PRODUCT_MEDIA_MARKED = """
query ProductMediaMarked($id: ID!) {
  product(id: $id) {
    id
    media(first: 100) {
      nodes {
        id
        alt
        status
        mediaErrors { code message }
        ... on MediaImage {
          image { url }
          mark: metafield(namespace: "stockyard", key: "image") { value }
        }
      }
    }
  }
}"""

# What Stockyard already did for an order: its ledger (Stockyard fulfillment id -> the
# shipped totals it aims at and the Shopify fulfillments it made) and the fulfillments'
# tracking, to tell a repeat from a new shipment and a corrected tracking number.
ORDER_FULFILLMENT_LEDGER = """
query OrderFulfillmentLedger($id: ID!) {
  order(id: $id) {
    id
    ledger: metafield(namespace: "stockyard", key: "fulfillments") { value }
    fulfillments(first: 50) { id status trackingInfo { company number url } }
  }
}"""

FULFILLMENT_TRACKING_UPDATE = """
mutation FulfillmentTrackingUpdate(
  $id: ID!, $tracking: FulfillmentTrackingInput!, $notify: Boolean
) {
  fulfillmentTrackingInfoUpdate(
    fulfillmentId: $id, trackingInfoInput: $tracking, notifyCustomer: $notify
  ) {
    fulfillment { id trackingInfo { company number url } }
    userErrors { field message }
  }
}"""


def all_documents() -> dict[str, str]:
    """Every document of this module by its constant's name (what the test validates)."""
    return {
        name: value
        for name, value in globals().items()
        if name.isupper()
        and isinstance(value, str)
        and value.lstrip().startswith(("query", "mutation"))
    }
