import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadProjectConfig, resolveEnvironment } from "../../../ci/config/load.ts";
import {
	normalizeRelative,
	patternWithinDir,
	withMigrationsDir,
} from "../../../ci/config/paths.ts";
import type { D1Database } from "../../../ci/config/schema.ts";
import { parseCatalog, readCatalog } from "../../../ci/migrations/catalog.ts";

const dirs: string[] = [];
afterEach(() => {
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const db = (migrationsDir: string, migrationsPattern: string): D1Database => ({
	binding: "DB",
	databaseName: undefined,
	databaseId: undefined,
	migrationsDir,
	migrationsTable: "d1_migrations",
	migrationsPattern,
});

describe("normalizeRelative()", () => {
	it.each([
		["migrations/", "migrations"],
		["./db//migrations", "db/migrations"],
		["db\\migrations", "db/migrations"],
		[".", "."],
		["./", "."],
		["../other/db", "../other/db"],
	])("%j → %j", (input, expected) => {
		expect(normalizeRelative(input)).toBe(expected);
	});
});

describe("patternWithinDir()", () => {
	it.each([
		["migrations", "migrations/*.sql", "*.sql"],
		["drizzle", "drizzle/*/migration.sql", "*/migration.sql"],
		[".", "*.sql", "*.sql"],
		["../other/db", "../other/db/*.sql", "*.sql"],
	])("dir %j, pattern %j → %j", (dir, pattern, expected) => {
		expect(patternWithinDir(db(dir, pattern))).toBe(expected);
	});
});

describe("withMigrationsDir()", () => {
	it.each([
		// The guard the old copy in migration-test lacked: "." sliced "*.sql" to "sql".
		[".", "*.sql", "db/migrations", "db/migrations/*.sql"],
		["migrations", "migrations/*.sql", "db/migrations/", "db/migrations/*.sql"],
		["drizzle", "drizzle/*/migration.sql", "other", "other/*/migration.sql"],
		["migrations", "migrations/*.sql", ".", "*.sql"],
	])("dir %j pattern %j, --dir %j → %j", (dir, pattern, override, expected) => {
		const moved = withMigrationsDir(db(dir, pattern), override);
		expect(moved.migrationsPattern).toBe(expected);
		expect(moved.migrationsDir).toBe(normalizeRelative(override));
	});
});

// wrangler resolves migrations_dir against the config file's directory
// (d1/migrations/apply.ts: `projectPath: path.dirname(config.configPath)`).
describe("paths from a wrangler config elsewhere (--config ../other/wrangler.toml)", () => {
	function layout() {
		const base = mkdtempSync(path.join(tmpdir(), "wp-paths-"));
		dirs.push(base);
		const files: Record<string, string> = {
			"app/wrangler.jsonc": '{ "name": "app", "d1_databases": [{ "binding": "DB" }] }',
			"app/migrations/0001_app.sql": "CREATE TABLE app_only (id INTEGER);\n",
			"other/wrangler.toml":
				'name = "other"\n[[d1_databases]]\nbinding = "DB"\nmigrations_dir = "db"\nmigrations_pattern = "db/*/migration.sql"\n',
			"other/db/20250101000000_init/migration.sql": "CREATE TABLE other_only (id INTEGER);\n",
		};
		for (const [name, text] of Object.entries(files)) {
			mkdirSync(path.dirname(path.join(base, name)), { recursive: true });
			writeFileSync(path.join(base, name), text);
		}
		return base;
	}

	it("reads the other app's migrations, never the cwd's", () => {
		const base = layout();
		const root = path.join(base, "app");
		const project = loadProjectConfig({ cwd: root, config: "../other/wrangler.toml" });
		const [database] = resolveEnvironment(project, undefined).databases;
		expect(database).toMatchObject({
			migrationsDir: "../other/db",
			migrationsPattern: "../other/db/*/migration.sql",
		});
		const catalog = parseCatalog(readCatalog({ root, database: database as D1Database }));
		expect(catalog.migrations.map((m) => m.path)).toEqual([
			"../other/db/20250101000000_init/migration.sql",
		]);
	});

	it("resolves the same binding identically from the other app's own directory", () => {
		const base = layout();
		const project = loadProjectConfig({ cwd: path.join(base, "other") });
		const [database] = resolveEnvironment(project, undefined).databases;
		expect(database).toMatchObject({
			migrationsDir: "db",
			migrationsPattern: "db/*/migration.sql",
		});
	});
});
