-- Local data for `workers-pipeline e2e` / `serve`, applied after every migration (never remotely).
INSERT INTO content (id, project_id, title, body, status) VALUES
	(100, 1, 'Seeded for end-to-end tests', 'From seed.sql.', 'published'),
	(101, 1, 'Seeded draft', 'Never shown.', 'draft');

UPDATE content_metrics SET views = 5 WHERE content_id = 100;
