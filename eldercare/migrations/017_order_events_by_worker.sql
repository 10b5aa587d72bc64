-- A worker's order events, newest first: whether their phone has gone quiet
-- (dispatch/timers.py, _set_aside_if_quiet) is read at each missed emergency offer,
-- which otherwise scanned every event of every order.
CREATE INDEX IF NOT EXISTS work_order_events_by_worker
    ON work_order_events (worker_id, id) WHERE worker_id IS NOT NULL;
