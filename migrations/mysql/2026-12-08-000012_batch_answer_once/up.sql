-- A batch's answer is recorded once, with the attempt of the request's last callback;
-- the attempts of its other callbacks name that callback here (their response_body is
-- NULL), so a batch of 1,000 answered with 64 KiB no longer stores 64 MB.
ALTER TABLE httphooks_attempts ADD COLUMN response_body_callback_id BIGINT;
