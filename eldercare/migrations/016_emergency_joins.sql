-- An alert that joined the live emergency order of another alert of the same resident
-- (dispatch/joins.py): a fall's long lie, or an SOS pressed while help for the fall is
-- on its way, is answered by the worker already sent, not by a second one.
CREATE TABLE IF NOT EXISTS emergency_joins (
    alert_id   bigint PRIMARY KEY REFERENCES alerts (id),
    order_id   bigint NOT NULL REFERENCES work_orders (id),
    joined_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS emergency_joins_by_order ON emergency_joins (order_id);

-- every order of an alert, live or not (work_orders_one_per_alert holds live ones only)
CREATE INDEX IF NOT EXISTS work_orders_by_alert ON work_orders (alert_id) WHERE alert_id IS NOT NULL;

-- Every order an alert has: its own (work_orders.alert_id) and the one it joined.
CREATE OR REPLACE VIEW alert_orders AS
    SELECT alert_id, id AS order_id FROM work_orders WHERE alert_id IS NOT NULL
    UNION ALL
    SELECT alert_id, order_id FROM emergency_joins;
