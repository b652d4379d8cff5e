-- SQLite can add a column with a CHECK constraint in place: no rebuild of a parent table needed.
ALTER TABLE projects ADD COLUMN archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1));
