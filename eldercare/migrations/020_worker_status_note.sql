-- Why a worker's status is what it is, when the platform set it rather than the worker
-- or the centre: 'missed_offers' when dispatch set a quiet worker off shift
-- (dispatch/timers.py, _set_aside_if_quiet). Cleared by the next status change.
ALTER TABLE service_workers ADD COLUMN IF NOT EXISTS status_note text NOT NULL DEFAULT '';
