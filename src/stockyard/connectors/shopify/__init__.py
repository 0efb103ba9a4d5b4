"""The `shopify` connector (issue 18), under construction: so far only Shopify's own Admin
GraphQL schema (`schema`), against which every document the connector sends is checked."""
