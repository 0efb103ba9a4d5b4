"""The data flows (docs/flows.md): one handler per instruction of the catalog, on top of the
queue engine, the catalog store and the connectors. `flows.catalog` holds the instruction
table and `flows.handlers` the handlers; the package itself imports neither, so reading
the table does not load every flow and connector (a heavier heap costs the worker's
garbage collector on every batch)."""
