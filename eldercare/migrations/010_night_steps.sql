-- Steps walked in the night parts of each local day (before waking start 07:00 and
-- after waking end 22:00 local), for the night-activity baseline
-- (alerts/detectors/night_activity.py, alerts/daily_summary.py). A plain table on both
-- storage paths, like the other daily summaries (migration 009). A night is the evening
-- part of one day plus the morning part of the next; the covered seconds say whether a
-- worn band saw enough of it to count.
CREATE TABLE IF NOT EXISTS resident_daily_night (
    resident_id     bigint NOT NULL,
    day             date NOT NULL,   -- local day, in daily_summary_days.tz
    morning_steps   integer NOT NULL, -- 00:00 to waking start
    morning_covered_s real NOT NULL,  -- of that part, seconds covered by a worn band's reports
    evening_steps   integer NOT NULL, -- waking end to 24:00
    evening_covered_s real NOT NULL,
    PRIMARY KEY (resident_id, day)
);
CREATE INDEX IF NOT EXISTS resident_daily_night_day ON resident_daily_night (day);

-- Days summarised before this table existed have no night rows: summarise them again
-- (the engine does so at its next reload, for the days of its window; re-summarising a
-- day replaces it, so running this twice costs one more pass, nothing else).
DELETE FROM daily_summary_days
WHERE NOT EXISTS (SELECT 1 FROM resident_daily_night n WHERE n.day = daily_summary_days.day);
