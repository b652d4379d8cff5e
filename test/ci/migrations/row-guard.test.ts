import { describe, expect, it } from "vitest";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import { replayMigrations } from "../../../ci/migrations/replay.ts";
import { parseTouchedTables, planRowGuard } from "../../../ci/migrations/row-guard.ts";

const SCHEMA = `
CREATE TABLE users (id INTEGER PRIMARY KEY);
CREATE TABLE projects (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE);
CREATE TABLE content (id INTEGER PRIMARY KEY, project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE);
CREATE TABLE notes (id INTEGER PRIMARY KEY, project_id INTEGER REFERENCES projects (id) ON DELETE SET NULL);
CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id INTEGER REFERENCES users (id) ON DELETE CASCADE);
`;
const schema = (() => {
	const catalog = parseCatalog({
		dir: "m",
		pattern: "m/*.sql",
		retired: [],
		files: [{ name: "0001_s.sql", bytes: Buffer.from(SCHEMA) }],
	});
	return replayMigrations(catalog.migrations).schema;
})();

const REBUILD_USERS =
	"CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT);\nINSERT INTO users_new SELECT id, NULL FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;";

describe("parseTouchedTables()", () => {
	it("finds what a rebuild drops and what it names", () => {
		const { emptied, named } = parseTouchedTables(REBUILD_USERS);
		expect([...emptied]).toEqual(["users"]);
		expect([...named].sort()).toEqual(["users", "users_new"]);
	});
});

describe("planRowGuard()", () => {
	it.each([
		[
			"a rebuild of a parent: its CASCADE children, transitively",
			REBUILD_USERS,
			[
				["projects", "users"],
				["sessions", "users"],
				["content", "users"],
			],
		],
		["a DELETE of a parent", "DELETE FROM projects WHERE id = 1;", [["content", "projects"]]],
		["a leaf table's rebuild cascades nowhere", "DROP TABLE sessions;", []],
		[
			"children the migration names itself are its own business",
			`${REBUILD_USERS}\nDELETE FROM sessions;`,
			[
				["projects", "users"],
				["content", "users"],
			],
		],
		["no DROP, no DELETE: nothing to guard", "ALTER TABLE users ADD COLUMN x INTEGER;", []],
	])("%s", (_label, sql, expected) => {
		expect(planRowGuard(sql, schema).map((g) => [g.table, g.via])).toEqual(expected);
	});
});
