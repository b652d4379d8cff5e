-- Add projects.archived with a CHECK constraint, which ALTER TABLE cannot do: rebuild the table.
-- D1 ignores PRAGMA foreign_keys=OFF, so a plain DROP TABLE would cascade-delete every content
-- row. Deferring foreign key checks to the end of the migration keeps the children intact.
-- workers-pipeline-disable D1_DESTRUCTIVE: the old projects table is replaced by projects_new with every row copied
PRAGMA defer_foreign_keys = ON;

CREATE TABLE projects_new (
	id INTEGER PRIMARY KEY,
	owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	slug TEXT NOT NULL UNIQUE,
	archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
	created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

INSERT INTO projects_new (id, owner_id, name, slug, created_at)
SELECT id, owner_id, name, slug, created_at FROM projects;

DROP TABLE projects;

ALTER TABLE projects_new RENAME TO projects;

CREATE INDEX projects_owner_id_idx ON projects (owner_id);

PRAGMA defer_foreign_keys = OFF;
