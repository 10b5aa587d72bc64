-- A worker's completed visits by when they were completed: a re-plan counts those of
-- the day against the worker's orders per day (dispatch/day.py, _less_done), which
-- otherwise read every order the worker ever had.
CREATE INDEX IF NOT EXISTS work_orders_completed_by_worker
    ON work_orders (worker_id, completed_at) WHERE state = 'completed';
