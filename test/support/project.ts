// The one way tests make a project on disk: a temp copy of a template (or nothing), plus files
// added, replaced or deleted; every project is removed by removeProjects().
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const FIXTURES = path.join(REPO, "test/fixtures/projects");
/** The example app's migrations (the repository's own). */
export const EXAMPLE_MIGRATIONS_DIR = path.join(REPO, "migrations");

/**
 * Paths relative to the project: content to write (parents created), null to delete, or a
 * symbolic link to another path of the project (as a workspace links its packages), or to an
 * absolute path.
 */
export type Files = Record<string, string | Buffer | null | { symlink: string }>;

export interface ProjectOptions {
	/** A directory to copy first: a fixture name under test/fixtures/projects or an absolute path. */
	from?: string;
	files?: Files;
	/** Temp directory name prefix, to tell projects apart in /tmp. */
	prefix?: string;
}

const made: string[] = [];

/** A fresh temp project; returns its directory. */
export function makeProject({
	from,
	files = {},
	prefix = "wp-project-",
}: ProjectOptions = {}): string {
	const dir = mkdtempSync(path.join(tmpdir(), prefix));
	made.push(dir);
	if (from)
		cpSync(path.isAbsolute(from) ? from : path.join(FIXTURES, from), dir, { recursive: true });
	writeFiles(dir, files);
	return dir;
}

/** A temp directory removed with the projects (a HOME, a persist dir…). */
export function makeTempDir(prefix = "wp-temp-"): string {
	const dir = mkdtempSync(path.join(tmpdir(), prefix));
	made.push(dir);
	return dir;
}

export function writeFiles(dir: string, files: Files): void {
	for (const [name, content] of Object.entries(files)) {
		const file = path.join(dir, name);
		if (content === null) {
			rmSync(file, { recursive: true, force: true });
		} else if (typeof content === "object" && "symlink" in content) {
			mkdirSync(path.dirname(file), { recursive: true });
			const target = content.symlink;
			symlinkSync(path.isAbsolute(target) ? target : path.join(dir, target), file);
		} else {
			mkdirSync(path.dirname(file), { recursive: true });
			writeFileSync(file, content);
		}
	}
}

/** Removes every project and temp dir made so far (afterEach/afterAll). */
export function removeProjects(): void {
	for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}
