-- resident_daily_vitals held one row per histogram bin: ~200 rows per resident-day,
-- ~700 million rows at 100,000 residents over the 35 days kept, each with a tuple
-- header and an entry in a five-column primary key. Now one row per resident, day,
-- part of the day and parameter holds the whole histogram as two arrays (the bins'
-- values, ascending, and their counts): the same histograms, ~25 x fewer rows, and the
-- reload reads them without summing bins in SQL (alerts/baselines.py).
CREATE TABLE resident_daily_vitals_arrays (
    resident_id bigint NOT NULL,
    day         date NOT NULL,      -- local day, in daily_summary_days.tz
    waking      boolean NOT NULL,   -- waking hours (07:00-22:00 local) or night
    param       text NOT NULL,      -- hr, spo2, sbp, temp (wrist skin)
    bins        real[] NOT NULL,    -- the distinct values, ascending
    counts      integer[] NOT NULL, -- readings of each value
    PRIMARY KEY (resident_id, day, waking, param),
    CHECK (cardinality(bins) = cardinality(counts))
);

INSERT INTO resident_daily_vitals_arrays (resident_id, day, waking, param, bins, counts)
SELECT resident_id, day, waking, param, array_agg(value ORDER BY value),
       array_agg(n ORDER BY value)
FROM resident_daily_vitals
GROUP BY resident_id, day, waking, param;

DROP TABLE resident_daily_vitals;
ALTER TABLE resident_daily_vitals_arrays RENAME TO resident_daily_vitals;
ALTER INDEX resident_daily_vitals_arrays_pkey RENAME TO resident_daily_vitals_pkey;
CREATE INDEX resident_daily_vitals_day ON resident_daily_vitals (day);
