import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import { setupSql } from "../../../ci/migrations/ledger.ts";
import { replayMigrations } from "../../../ci/migrations/replay.ts";
import {
	cascadeEdges,
	parseTouchedTables,
	planRowGuard,
	rowCountsAfterSql,
	rowCountsBeforeSql,
} from "../../../ci/migrations/row-guard.ts";
import type { Schema } from "../../../ci/migrations/schema.ts";

const SCHEMA = `
CREATE TABLE users (id INTEGER PRIMARY KEY);
CREATE TABLE projects (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE);
CREATE TABLE content (id INTEGER PRIMARY KEY, project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE);
CREATE TABLE notes (id INTEGER PRIMARY KEY, project_id INTEGER REFERENCES projects (id) ON DELETE SET NULL);
CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id INTEGER REFERENCES users (id) ON DELETE CASCADE);
`;
const schemaOf = (sql: string): Schema => {
	const catalog = parseCatalog({
		dir: "m",
		pattern: "m/*.sql",
		retired: [],
		files: [{ name: "0001_s.sql", bytes: Buffer.from(sql) }],
	});
	return replayMigrations(catalog.migrations).schema;
};
const schema = schemaOf(SCHEMA);

const REBUILD_USERS =
	"CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT);\nINSERT INTO users_new SELECT id, NULL FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;";

describe("parseTouchedTables()", () => {
	it("finds what a rebuild drops and what it names", () => {
		const { emptied, named } = parseTouchedTables(REBUILD_USERS);
		expect([...emptied]).toEqual(["users"]);
		expect([...named].sort()).toEqual(["users", "users_new"]);
	});

	it.each([
		["DROP TABLE IF EXISTS Old;", ["old"], ["old"]],
		['DROP TABLE "Quoted Name";', ["quoted name"], ["quoted name"]],
		["DELETE FROM Logs WHERE 1;", ["logs"], ["logs"]],
		["DELETE FROM;", [], []],
		["DROP INDEX idx_users;", [], []],
		["DROP VIEW v;", [], []],
		["CREATE TABLE IF NOT EXISTS Fresh (x);", [], ["fresh"]],
		["CREATE TEMP TABLE scratch (x);", [], ["scratch"]],
		["CREATE INDEX i ON users (id);", [], []],
		["ALTER TABLE Users RENAME TO Members;", [], ["users", "members"]],
		["ALTER TABLE users ADD COLUMN x TEXT;", [], ["users"]],
		["INSERT INTO users SELECT 1; UPDATE users SET id = 2;", [], []],
	])("%s → emptied %j, named %j", (sql, emptied, named) => {
		const touched = parseTouchedTables(sql);
		expect([...touched.emptied]).toEqual(emptied);
		expect([...touched.named]).toEqual(named);
	});
});

describe("cascadeEdges()", () => {
	it.each([
		["REFERENCES p (id) ON DELETE CASCADE", [["c", "p"]]],
		['REFERENCES "P" ON DELETE CASCADE', [["c", "p"]]],
		["REFERENCES [p] (id) ON UPDATE CASCADE ON DELETE CASCADE", [["c", "p"]]],
		["REFERENCES p (id) ON DELETE SET NULL", []],
		["REFERENCES p (id) ON UPDATE CASCADE", []],
		["REFERENCES p (id)", []],
	])("a column %s → %j", (clause, expected) => {
		const s = schemaOf(
			`CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE C (p_id INTEGER ${clause});`,
		);
		expect(cascadeEdges(s).map((e) => [e.child, e.parent])).toEqual(expected);
	});

	it("reads every reference of a table, and only tables", () => {
		const s = schemaOf(
			"CREATE TABLE a (id INTEGER PRIMARY KEY);\nCREATE TABLE b (id INTEGER PRIMARY KEY);\n" +
				"CREATE TABLE ab (a_id INTEGER REFERENCES a (id) ON DELETE CASCADE, b_id INTEGER REFERENCES b (id) ON DELETE SET NULL, FOREIGN KEY (a_id) REFERENCES b (id) ON DELETE CASCADE);\n" +
				"CREATE VIEW v AS SELECT 'REFERENCES a ON DELETE CASCADE' AS x;",
		);
		expect(cascadeEdges(s)).toEqual([
			{ child: "ab", parent: "a" },
			{ child: "ab", parent: "b" },
		]);
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

describe("planRowGuard() names and cycles", () => {
	it("reports the tables as the schema spells them", () => {
		const s = schemaOf(
			"CREATE TABLE Parent (id INTEGER PRIMARY KEY);\nCREATE TABLE Child (p INTEGER REFERENCES Parent (id) ON DELETE CASCADE);",
		);
		expect(planRowGuard("drop table parent;", s)).toEqual([{ table: "Child", via: "Parent" }]);
	});

	it("ends on a cascade cycle and never guards a table the migration empties itself", () => {
		const s = schemaOf(
			"CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b (id) ON DELETE CASCADE);\n" +
				"CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a (id) ON DELETE CASCADE);\n" +
				"CREATE TABLE c (a_id INTEGER REFERENCES a (id) ON DELETE CASCADE);",
		);
		expect(planRowGuard("DELETE FROM a;", s)).toEqual([
			{ table: "b", via: "a" },
			{ table: "c", via: "a" },
		]);
		expect(planRowGuard("DELETE FROM a; DELETE FROM b;", s)).toEqual([{ table: "c", via: "a" }]);
	});
});

describe("rowCountsBeforeSql() and rowCountsAfterSql()", () => {
	const guarded = [{ table: "Child Rows", via: "parent" }];
	const db = () => {
		const d = new Database(":memory:");
		d.exec(setupSql("d1_migrations"));
		d.exec('CREATE TABLE "Child Rows" (id INTEGER);\nINSERT INTO "Child Rows" VALUES (1), (2);');
		return d;
	};

	it("are empty without guarded tables", () => {
		expect(rowCountsBeforeSql([])).toBe("");
		expect(rowCountsAfterSql([])).toBe("");
	});

	it.each([
		["rows kept", "SELECT 1;", undefined],
		["rows added", 'INSERT INTO "Child Rows" VALUES (3);', undefined],
		["a row lost", 'DELETE FROM "Child Rows" WHERE id = 1;', "CHECK constraint failed"],
	])("%s: the request %s", (_, migration, error) => {
		const d = db();
		const request = `${rowCountsBeforeSql(guarded)}\n${migration}\n${rowCountsAfterSql(guarded)}`;
		const run = () => d.transaction(() => d.exec(request))();
		if (error) {
			expect(run).toThrow(error);
			// Atomic: the lost row is back.
			expect(d.prepare('SELECT count(*) AS n FROM "Child Rows"').get()).toEqual({ n: 2 });
		} else {
			expect(run).not.toThrow();
			// The counts are cleared for the next request.
			expect(d.prepare("SELECT count(*) AS n FROM workers_pipeline_row_counts").get()).toEqual({
				n: 0,
			});
		}
	});

	it("clears counts a previous request left behind", () => {
		const d = db();
		d.exec(
			"INSERT INTO workers_pipeline_row_counts (tbl, n) VALUES ('Child Rows', 99), ('other', 1);",
		);
		expect(() => d.exec(rowCountsBeforeSql(guarded))).not.toThrow();
		expect(d.prepare("SELECT tbl, n FROM workers_pipeline_row_counts").all()).toEqual([
			{ tbl: "Child Rows", n: 2 },
		]);
	});
});

describe("row guard corners", () => {
	it.each([
		"DROP TABLE;",
		"DELETE FROM;",
		"CREATE TABLE;",
		"ALTER TABLE;",
		"ALTER TABLE t RENAME TO;",
	])("parseTouchedTables(%j) names nothing and never throws", (sql) => {
		const touched = parseTouchedTables(sql);
		expect([...touched.emptied, ...touched.named].filter((n) => n !== "t")).toEqual([]);
	});

	it("leaves out a child the migration changes itself, though it does not empty it", () => {
		const sql = "DROP TABLE users;\nALTER TABLE sessions ADD COLUMN note TEXT;";
		expect(planRowGuard(sql, schema).map((g) => g.table)).toEqual(["projects", "content"]);
	});

	it("follows a composite foreign key to its parent", () => {
		const s = schemaOf(
			"CREATE TABLE p (a INTEGER, b INTEGER, PRIMARY KEY (a, b));\nCREATE TABLE c (x INTEGER, y INTEGER, FOREIGN KEY (x, y) REFERENCES p (a, b) ON DELETE CASCADE);",
		);
		expect(cascadeEdges(s)).toEqual([{ child: "c", parent: "p" }]);
	});
});
