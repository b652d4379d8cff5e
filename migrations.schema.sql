-- Schema of D1 binding "DB" after replaying migrations/*.sql (through 0008_seed_demo_content.sql).
-- Written by `workers-pipeline migration-test --update-snapshot`; review changes, never edit by hand.

CREATE TABLE content (
	id INTEGER PRIMARY KEY,
	project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	title TEXT NOT NULL,
	body TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
	created_at TEXT NOT NULL DEFAULT (strftime ('%Y-%m-%dT%H:%M:%fZ', 'now')),
	updated_at TEXT NOT NULL DEFAULT (strftime ('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE content_metrics (
	content_id INTEGER PRIMARY KEY REFERENCES content (id) ON DELETE CASCADE,
	views INTEGER NOT NULL DEFAULT 0 CHECK (views >= 0),
	likes INTEGER NOT NULL DEFAULT 0 CHECK (likes >= 0)
);

CREATE TABLE projects (
	id INTEGER PRIMARY KEY,
	owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	slug TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL DEFAULT (strftime ('%Y-%m-%dT%H:%M:%fZ', 'now')),
	archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1))
);

CREATE TABLE "sessions" (
	id TEXT PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL CHECK (expires_at > 0),
	created_at TEXT NOT NULL DEFAULT (strftime ('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE users (
	id INTEGER PRIMARY KEY,
	email TEXT NOT NULL UNIQUE COLLATE NOCASE,
	display_name TEXT,
	created_at TEXT NOT NULL DEFAULT (strftime ('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX content_project_status_idx ON content (project_id, status);

CREATE INDEX projects_owner_id_idx ON projects (owner_id);

CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TRIGGER content_metrics_init AFTER INSERT ON content FOR EACH ROW BEGIN
	INSERT INTO content_metrics (content_id) VALUES (NEW.id);
END;

CREATE TRIGGER content_touch_updated_at AFTER UPDATE OF title, body, status ON content FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at BEGIN
	UPDATE content SET updated_at = strftime ('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
