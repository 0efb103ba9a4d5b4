-- A metered API's budget shared by the workers of one connection (connectors.budget).
-- Every statement names the connection AND its client: a budget is only ever read or
-- spent by the client whose connection it is. Times are seconds on the workers' wall
-- clocks; the bucket's clock never goes back (a worker whose clock is behind another's
-- refills nothing and leaves `at` where it was, so no point is restored twice).

-- name: take_budget
-- Take :cost points if, refilled to :now, the budget still covers them, or would within
-- :max_wait seconds (the taker then waits for them: `available` below zero is what is
-- promised to waiting workers); never more than the whole bucket. One row (available
-- after the take, restore rate, points taken so far) when taken; none when it does not
-- fit or nothing is known yet.
UPDATE connection_budgets SET
  available = CASE
    WHEN available + (CASE WHEN CAST(:now AS DOUBLE PRECISION) > at
      THEN CAST(:now AS DOUBLE PRECISION) - at ELSE 0 END) * restore_rate > capacity
    THEN capacity
    ELSE available + (CASE WHEN CAST(:now AS DOUBLE PRECISION) > at
      THEN CAST(:now AS DOUBLE PRECISION) - at ELSE 0 END) * restore_rate
  END - CAST(:cost AS DOUBLE PRECISION),
  at = CASE WHEN at > CAST(:now AS DOUBLE PRECISION) THEN at
    ELSE CAST(:now AS DOUBLE PRECISION) END,
  spent = spent + CAST(:cost AS DOUBLE PRECISION)
WHERE connection_id = :connection_id AND client_id = :client_id
  AND CAST(:cost AS DOUBLE PRECISION) <= capacity
  AND CASE
    WHEN available + (CASE WHEN CAST(:now AS DOUBLE PRECISION) > at
      THEN CAST(:now AS DOUBLE PRECISION) - at ELSE 0 END) * restore_rate > capacity
    THEN capacity
    ELSE available + (CASE WHEN CAST(:now AS DOUBLE PRECISION) > at
      THEN CAST(:now AS DOUBLE PRECISION) - at ELSE 0 END) * restore_rate
  END - CAST(:cost AS DOUBLE PRECISION)
    >= -CAST(:max_wait AS DOUBLE PRECISION) * restore_rate
RETURNING available, restore_rate, spent

-- name: budget_of
-- The budget as last written (to project, when a take did not fit).
SELECT capacity, available, restore_rate, at, spent FROM connection_budgets
WHERE connection_id = :connection_id AND client_id = :client_id

-- name: report_budget
-- What the remote API reported in an answer is the truth, less what other workers took
-- after the answered request was sent (:since: `spent` right after its take; NULL: it
-- took nothing, as before the first report). The first report makes the row, for a
-- connection of the client only.
INSERT INTO connection_budgets (connection_id, client_id, capacity, available, restore_rate,
  at, spent)
SELECT id, client_id, CAST(:capacity AS DOUBLE PRECISION),
  CAST(:available AS DOUBLE PRECISION), CAST(:restore_rate AS DOUBLE PRECISION),
  CAST(:now AS DOUBLE PRECISION), 0
FROM connections WHERE id = :connection_id AND client_id = :client_id
ON CONFLICT (connection_id) DO UPDATE SET
  capacity = excluded.capacity,
  restore_rate = excluded.restore_rate,
  available = CASE
    WHEN excluded.available - (connection_budgets.spent
      - coalesce(CAST(:since AS DOUBLE PRECISION), connection_budgets.spent))
      > excluded.capacity
    THEN excluded.capacity
    ELSE excluded.available - (connection_budgets.spent
      - coalesce(CAST(:since AS DOUBLE PRECISION), connection_budgets.spent))
  END,
  at = CASE WHEN connection_budgets.at > excluded.at THEN connection_budgets.at
    ELSE excluded.at END
WHERE connection_budgets.client_id = excluded.client_id
