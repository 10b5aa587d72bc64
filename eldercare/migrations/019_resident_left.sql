-- A resident who has left the service (moved into a care home, moved away, died):
-- no more visits are booked for them (dispatch refuses new orders, the recurring
-- rules skip them), and their band goes back to stock. The record and its history
-- stay (eldercare/leaving.py).
ALTER TABLE residents ADD COLUMN IF NOT EXISTS left_at timestamptz;
ALTER TABLE residents ADD COLUMN IF NOT EXISTS left_reason text;
