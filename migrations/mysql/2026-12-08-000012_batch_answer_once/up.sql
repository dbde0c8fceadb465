-- A batch's answer is recorded once, with the attempt of the request's first callback;
-- the attempts of its other callbacks name that callback here (their response_body is
-- NULL), so a batch of 1,000 answered with 64 KiB no longer stores 64 MB.
ALTER TABLE httphooks_attempts ADD COLUMN response_body_callback_id BIGINT;
-- `delete_old_callbacks` finds the attempts that point at a callback it deletes (and
-- copies the answer into those it keeps).
CREATE INDEX httphooks_attempts_answer ON httphooks_attempts (response_body_callback_id);
