-- Store session expiry as unix seconds with a CHECK, which ALTER TABLE cannot change: rebuild.
-- sessions is a leaf table (nothing references it), so dropping it cascades nowhere. A parent
-- table (users, projects, content) must never be rebuilt like this on D1: foreign_keys=OFF is a
-- no-op there and DROP TABLE would delete every ON DELETE CASCADE child row.
-- workers-pipeline-disable D1_DESTRUCTIVE: every row is copied to sessions_new before the old table is dropped
PRAGMA defer_foreign_keys = ON;

CREATE TABLE sessions_new (
	id TEXT PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL CHECK (expires_at > 0),
	created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

INSERT INTO sessions_new (id, user_id, expires_at, created_at)
SELECT id, user_id, CAST(strftime('%s', expires_at) AS INTEGER), created_at FROM sessions;

DROP TABLE sessions;

ALTER TABLE sessions_new RENAME TO sessions;

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

PRAGMA defer_foreign_keys = OFF;
