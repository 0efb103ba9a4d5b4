-- A metered API's budget shared by the workers of one connection (connectors.budget).
-- Every statement names the connection AND its client: a budget is only ever read or
-- spent by the client whose connection it is. Times are seconds on the database's clock
-- (`clock`, budget.<backend>.sql), one for every worker of every host, read in the same
-- transaction as the statement it is passed to as :now. `at` never goes back: a :now
-- behind it (on PostgreSQL, read before the take waited for the row another worker was
-- writing; or the server's clock stepped back) refills nothing and leaves `at`, so no
-- second is restored twice.
-- A claim (`claim` points until `claim_until`) is left by a take refused for want of
-- points; a smaller take must then leave the claim in the bucket (at most all but its
-- own cost, so it is never frozen), without promises; a take at least as large ignores
-- the claim and, granted, clears it.

-- name: take_budget
-- Take :cost points if, refilled to :now, the budget still covers them (leaving any
-- larger claim), or would within :max_wait seconds (the taker then waits for them:
-- `available` below zero is what is promised to waiting workers); never more than the
-- whole bucket. One row (available after the take, restore rate, points taken so far)
-- when taken; none when it does not fit or nothing is known yet.
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
  spent = spent + CAST(:cost AS DOUBLE PRECISION),
  claim = CASE WHEN claim <= CAST(:cost AS DOUBLE PRECISION) THEN 0 ELSE claim END
WHERE connection_id = :connection_id AND client_id = :client_id
  AND CAST(:cost AS DOUBLE PRECISION) <= capacity
  AND CASE
    WHEN available + (CASE WHEN CAST(:now AS DOUBLE PRECISION) > at
      THEN CAST(:now AS DOUBLE PRECISION) - at ELSE 0 END) * restore_rate > capacity
    THEN capacity
    ELSE available + (CASE WHEN CAST(:now AS DOUBLE PRECISION) > at
      THEN CAST(:now AS DOUBLE PRECISION) - at ELSE 0 END) * restore_rate
  END - CAST(:cost AS DOUBLE PRECISION)
    >= CASE
      WHEN claim > CAST(:cost AS DOUBLE PRECISION)
        AND claim_until > CAST(:now AS DOUBLE PRECISION)
      THEN CASE WHEN claim < capacity - CAST(:cost AS DOUBLE PRECISION) THEN claim
        ELSE capacity - CAST(:cost AS DOUBLE PRECISION) END
      ELSE -CAST(:max_wait AS DOUBLE PRECISION) * restore_rate
    END
RETURNING available, restore_rate, spent

-- name: claim_budget
-- A take refused: it claims :cost points for :hold seconds unless a larger claim stands
-- (nor for more than the whole bucket, which never fits). The budget as it then is (to
-- say when the take will fit).
UPDATE connection_budgets SET
  claim = CASE WHEN CAST(:cost AS DOUBLE PRECISION) <= capacity AND (
      claim <= CAST(:cost AS DOUBLE PRECISION)
      OR claim_until <= CAST(:now AS DOUBLE PRECISION))
    THEN CAST(:cost AS DOUBLE PRECISION) ELSE claim END,
  claim_until = CASE WHEN CAST(:cost AS DOUBLE PRECISION) <= capacity AND (
      claim <= CAST(:cost AS DOUBLE PRECISION)
      OR claim_until <= CAST(:now AS DOUBLE PRECISION))
    THEN CAST(:now AS DOUBLE PRECISION) + CAST(:hold AS DOUBLE PRECISION)
    ELSE claim_until END
WHERE connection_id = :connection_id AND client_id = :client_id
RETURNING capacity, available, restore_rate, at, claim, claim_until

-- name: report_budget
-- What the remote API reported in an answer is the truth, less what other workers took
-- after the answered request was sent (:since: `spent` right after its take; NULL: it
-- took nothing, as before the first report). The first report makes the row, for a
-- connection of the client only. Stamped :now, or `at` if that is later (never back).
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
