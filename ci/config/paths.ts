import path from "node:path";
import type { D1Database } from "./schema.ts";

// Where a binding's migrations are, computed once: the catalog, the wrangler parity run and
// `migration-test --dir` all derive the in-directory glob from here.

/** POSIX separators, no trailing slash, `.` for the directory itself. */
export function normalizeRelative(p: string): string {
	const normalized = path.posix.normalize(p.replace(/\\/g, "/"));
	return normalized.endsWith("/") && normalized !== "/" ? normalized.slice(0, -1) : normalized;
}

/** The binding's `migrations_pattern` relative to its `migrations_dir` (what to glob inside it). */
export function patternWithinDir(
	database: Pick<D1Database, "migrationsDir" | "migrationsPattern">,
): string {
	const { migrationsDir: dir, migrationsPattern: pattern } = database;
	if (dir === ".") return pattern;
	return pattern.startsWith(`${dir}/`) ? pattern.slice(dir.length + 1) : pattern;
}

/** The binding with its migrations read from `dir` instead (`migration-test --dir`), same glob. */
export function withMigrationsDir(database: D1Database, dir: string): D1Database {
	const migrationsDir = normalizeRelative(dir);
	const within = patternWithinDir(database);
	return {
		...database,
		migrationsDir,
		migrationsPattern: migrationsDir === "." ? within : `${migrationsDir}/${within}`,
	};
}
