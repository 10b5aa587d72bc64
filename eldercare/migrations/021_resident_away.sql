-- A resident away from home for a while (a hospital stay, a week with family): between
-- away_from and away_until the alerts about the home routine and the band's upkeep are
-- held back, and no routine visit is booked for them (eldercare/absence.py). One
-- absence at a time, current or planned; ending it early clears the three columns.
ALTER TABLE residents ADD COLUMN IF NOT EXISTS away_from timestamptz;
ALTER TABLE residents ADD COLUMN IF NOT EXISTS away_until timestamptz;
ALTER TABLE residents ADD COLUMN IF NOT EXISTS away_reason text;
DO $$
BEGIN
    ALTER TABLE residents ADD CONSTRAINT residents_away_span CHECK (
        (away_from IS NULL) = (away_until IS NULL) AND (away_from IS NULL) = (away_reason IS NULL)
        AND (away_until IS NULL OR away_until > away_from));
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
