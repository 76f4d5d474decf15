-- The edge's explanation of a request's outcome, for example which plugin failed and how. NULL
-- for requests the status alone describes.
ALTER TABLE request_logs ADD COLUMN message TEXT;
