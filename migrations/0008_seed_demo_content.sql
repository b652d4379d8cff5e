-- Demo rows so a fresh environment's home page has something to show.
INSERT INTO users (id, email, display_name) VALUES
	(1, 'ada@example.com', 'Ada'),
	(2, 'grace@example.com', 'Grace');

INSERT INTO projects (id, owner_id, name, slug) VALUES
	(1, 1, 'Analytical Engine', 'analytical-engine'),
	(2, 2, 'Compiler', 'compiler');

INSERT INTO content (id, project_id, title, body, status) VALUES
	(1, 1, 'Notes on the engine', 'Bernoulli numbers, step by step.', 'published'),
	(2, 2, 'A-0 system', 'Subroutines as a library.', 'published'),
	(3, 2, 'Draft: COBOL', 'Work in progress.', 'draft');

UPDATE content_metrics SET views = 42, likes = 7 WHERE content_id = 1;
UPDATE content_metrics SET views = 17, likes = 3 WHERE content_id = 2;
