-- Each day's wake-up and bedtime, for the resident's own waking window
-- (alerts/detectors/waking.py, alerts/daily_summary.py): the first movement at or after
-- 04:00 local that begins sustained activity (at least 5 movements within the next
-- 60 min) and the last movement of the day that ends it (at least 5 within the 60 min
-- before). NULL when the day has none.
ALTER TABLE resident_daily_activity
    ADD COLUMN IF NOT EXISTS wake_at timestamptz,
    ADD COLUMN IF NOT EXISTS bed_at  timestamptz;

-- Days summarised before these columns existed have no wake-up or bedtime: summarise
-- them again (the engine does so at its next reload, for the days of its window;
-- re-summarising a day replaces it, so running this twice costs one more pass, nothing else).
DELETE FROM daily_summary_days
WHERE NOT EXISTS (SELECT 1 FROM resident_daily_activity a
                  WHERE a.day = daily_summary_days.day
                    AND (a.wake_at IS NOT NULL OR a.bed_at IS NOT NULL));
