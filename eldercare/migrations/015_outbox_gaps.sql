-- The ids the dispatch outbox skipped because their transaction had not committed
-- when it read past them, each [lo, hi, horizon xid or null] (dispatch/outbox_gaps.py).
-- Before, a look-back of 200 ids stood in for them, and nothing survived a restart.
ALTER TABLE dispatch_outbox ADD COLUMN IF NOT EXISTS gaps jsonb NOT NULL DEFAULT '[]'::jsonb;
