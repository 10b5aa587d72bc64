-- Each day's still stretches (between two movements, or from the day's start to its first
-- movement) of at least 30 min, unclipped, so that the inactivity routine counts each one
-- inside the resident's own waking window (alerts/daily_summary.py daily_longest_still)
-- instead of the fixed 07:00-22:00 that longest_still_s is clipped to. Shorter stretches
-- never change the routine: it is at least 2 h = 1.5 x 80 min. '{}' when there are none.
ALTER TABLE resident_daily_activity
    ADD COLUMN IF NOT EXISTS still_from timestamptz[],
    ADD COLUMN IF NOT EXISTS still_to   timestamptz[];

-- Days summarised before these columns existed: summarise them again (the engine does so
-- at its next reload, for the days of its window; running this twice costs nothing more).
DELETE FROM daily_summary_days
WHERE EXISTS (SELECT 1 FROM resident_daily_activity a
              WHERE a.day = daily_summary_days.day AND a.still_from IS NULL);
