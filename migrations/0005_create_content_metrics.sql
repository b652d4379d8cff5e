-- DEPENDS: 0004_create_content.sql
CREATE TABLE content_metrics (
	content_id INTEGER PRIMARY KEY REFERENCES content (id) ON DELETE CASCADE,
	views INTEGER NOT NULL DEFAULT 0 CHECK (views >= 0),
	likes INTEGER NOT NULL DEFAULT 0 CHECK (likes >= 0)
);

-- Every piece of content gets a metrics row the moment it exists.
CREATE TRIGGER content_metrics_init
AFTER INSERT ON content
FOR EACH ROW
BEGIN
	INSERT INTO content_metrics (content_id) VALUES (NEW.id);
END;
