-- The budget's clock on PostgreSQL (connectors.budget): the server's, one for the workers
-- of every host. clock_timestamp(), not now(): now() is the transaction's start.

-- name: clock
-- Now, in seconds since 1970 (UTC), from the database's own clock.
SELECT CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)
