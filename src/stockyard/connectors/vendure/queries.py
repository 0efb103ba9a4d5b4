"""The Admin API documents the vendure connector sends (Vendure 3.x schema)."""

_PRODUCT_FIELDS = """
  id name
  variants { id sku stockAllocated }
  optionGroups { id name options { id name } }
  assets { id tags { value } }
  featuredAsset { id }
"""

FIND_VARIANTS = f"""
query($skus: [String!]!) {{
  productVariants(options: {{filter: {{sku: {{in: $skus}}}}, take: 1}}) {{
    items {{ id sku product {{ {_PRODUCT_FIELDS} }} }}
  }}
}}"""

PRODUCT = f"""
query($id: ID!) {{ product(id: $id) {{ {_PRODUCT_FIELDS} }} }}"""

VARIANT_STOCK = """
query($ids: [String!]!, $take: Int!) {
  productVariants(options: {filter: {id: {in: $ids}}, take: $take}) {
    items { id stockAllocated }
  }
}"""

PRODUCT_BY_SLUG = """
query($slug: String!) { product(slug: $slug) { id variants { id } } }"""

CREATE_PRODUCT = """
mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }"""

UPDATE_PRODUCT = """
mutation($input: UpdateProductInput!) { updateProduct(input: $input) { id } }"""

DELETE_PRODUCT = """
mutation($id: ID!) { deleteProduct(id: $id) { result message } }"""

CREATE_VARIANTS = """
mutation($input: [CreateProductVariantInput!]!) {
  createProductVariants(input: $input) { id sku }
}"""

UPDATE_VARIANTS = """
mutation($input: [UpdateProductVariantInput!]!) {
  updateProductVariants(input: $input) { id sku }
}"""

DELETE_VARIANT = """
mutation($id: ID!) { deleteProductVariant(id: $id) { result message } }"""

CREATE_OPTION_GROUP = """
mutation($input: CreateProductOptionGroupInput!) {
  createProductOptionGroup(input: $input) { id name options { id name } }
}"""

ADD_OPTION_GROUP = """
mutation($productId: ID!, $groupId: ID!) {
  addOptionGroupToProduct(productId: $productId, optionGroupId: $groupId) { id }
}"""

CREATE_OPTION = """
mutation($input: CreateProductOptionInput!) { createProductOption(input: $input) { id name } }"""

CREATE_ASSETS = """
mutation($input: [CreateAssetInput!]!) {
  createAssets(input: $input) {
    ... on Asset { id }
    ... on ErrorResult { errorCode message }
  }
}"""

DELETE_ASSET = """
mutation($input: DeleteAssetInput!) { deleteAsset(input: $input) { result message } }"""

_ORDER_FIELDS = """
  id code currencyCode orderPlacedAt total totalWithTax shippingWithTax
  customer { id emailAddress firstName lastName }
  lines { id quantity unitPrice productVariant { sku name } }
  shippingAddress { fullName company streetLine1 streetLine2 city province postalCode
                    countryCode phoneNumber }
  billingAddress { fullName company streetLine1 streetLine2 city province postalCode
                   countryCode phoneNumber }
"""

ORDERS = f"""
query($since: DateTime!, $take: Int!) {{
  orders(options: {{filter: {{orderPlacedAt: {{after: $since}}}},
                   sort: {{orderPlacedAt: ASC}}, take: $take}}) {{
    items {{ {_ORDER_FIELDS} }}
  }}
}}"""

ORDER = f"""
query($id: ID!) {{ order(id: $id) {{ {_ORDER_FIELDS} }} }}"""

ORDER_FULFILLMENTS = """
query($id: ID!) {
  order(id: $id) { id code state lines { id quantity } fulfillments { id state } }
}"""

ADD_FULFILLMENT = """
mutation($input: FulfillOrderInput!) {
  addFulfillmentToOrder(input: $input) {
    ... on Fulfillment { id state }
    ... on ErrorResult { errorCode message }
  }
}"""

TRANSITION_FULFILLMENT = """
mutation($id: ID!, $state: String!) {
  transitionFulfillmentToState(id: $id, state: $state) {
    ... on Fulfillment { id state }
    ... on ErrorResult { errorCode message }
  }
}"""
