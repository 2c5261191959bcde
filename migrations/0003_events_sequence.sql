-- Event ids are ULIDs of when the event happened, but a run's events are inserted when
-- the run ends: an insertion-ordered sequence lets the events stream and cursors resume
-- without missing events that were inserted after later-stamped ones.
ALTER TABLE events ADD COLUMN seq bigserial;
CREATE UNIQUE INDEX events_seq_key ON events (seq);
CREATE INDEX events_user_seq_idx ON events (user_id, seq);
