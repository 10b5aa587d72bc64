-- longest_still_s (migration 009) held each day's longest still stretch clipped to the
-- fixed 07:00-22:00. Since migration 012 the inactivity routine is counted from the kept
-- stretches (still_from / still_to) inside each resident's own waking window, and nothing
-- reads this column any more.
ALTER TABLE resident_daily_activity DROP COLUMN IF EXISTS longest_still_s;
