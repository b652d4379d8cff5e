import { describe, expect, it } from "vitest";
import { fillTables, tablesNamedIn } from "../../../ci/migrations/fill.ts";
import { openD1LikeDatabase } from "../../../ci/migrations/replay.ts";

const SCHEMA = `CREATE TABLE teams (id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE members (
	id INTEGER PRIMARY KEY,
	team_id INTEGER NOT NULL REFERENCES teams(id),
	email TEXT NOT NULL,
	role TEXT NOT NULL CHECK (role IN ('owner', 'member')),
	handle TEXT,
	note TEXT DEFAULT 'none'
);
CREATE UNIQUE INDEX members_handle ON members (handle);`;

/** A fresh database with SCHEMA, filled once with `rows` rows per table. */
function filled(distinct?: ReadonlySet<string> | "all", rows = 3) {
	const db = openD1LikeDatabase();
	db.exec(SCHEMA);
	fillTables(db, {
		rows,
		exclude: [],
		mentioned: SCHEMA,
		state: { seen: new Set(), seq: 1 },
		distinct,
	});
	return db;
}

const distinctCount = (db: ReturnType<typeof filled>, table: string, column: string) =>
	db.prepare(`SELECT count(DISTINCT ${column}) FROM ${table}`).pluck().get();

describe("fillTables()", () => {
	it("repeats values in the columns no unique key covers, as real tables do", () => {
		const db = filled();
		try {
			expect(db.prepare("SELECT count(*) FROM members").pluck().get()).toBe(3);
			// Two of three rows share email, team and name: a UNIQUE index over them meets duplicates.
			expect(distinctCount(db, "members", "email")).toBe(2);
			expect(distinctCount(db, "members", "team_id")).toBe(2);
			expect(distinctCount(db, "teams", "name")).toBe(2);
			expect(() => db.exec("CREATE UNIQUE INDEX m_email ON members (email)")).toThrow(
				/UNIQUE constraint failed/,
			);
		} finally {
			db.close();
		}
	});

	it.each([
		["members", "id"],
		["members", "handle"],
		["teams", "slug"],
		["teams", "id"],
	])("keeps %s.%s distinct (a primary key, UNIQUE or unique index covers it)", (table, column) => {
		const db = filled();
		try {
			expect(distinctCount(db, table, column)).toBe(3);
		} finally {
			db.close();
		}
	});

	it("keeps CHECK, NOT NULL, defaults and foreign keys satisfied in the duplicated rows", () => {
		const db = filled();
		try {
			expect(db.prepare("SELECT DISTINCT role FROM members").pluck().all()).toEqual(["owner"]);
			expect(db.prepare("SELECT DISTINCT note FROM members").pluck().all()).toEqual(["none"]);
			expect(db.prepare("SELECT count(*) FROM pragma_foreign_key_check").pluck().get()).toBe(0);
		} finally {
			db.close();
		}
	});

	it.each([
		["every table", "all" as const],
		["the named table", new Set(["members"])],
	])("gives distinct values everywhere in %s", (_, distinct) => {
		const db = filled(distinct);
		try {
			expect(distinctCount(db, "members", "email")).toBe(3);
			expect(distinctCount(db, "members", "team_id")).toBe(3);
			expect(() => db.exec("CREATE UNIQUE INDEX m_email ON members (email)")).not.toThrow();
		} finally {
			db.close();
		}
	});

	it("keeps every column distinct in a table with a unique index on an expression", () => {
		const db = openD1LikeDatabase();
		try {
			const sql =
				"CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL, kind TEXT);\nCREATE UNIQUE INDEX tags_label ON tags (lower(label));";
			db.exec(sql);
			fillTables(db, { rows: 3, exclude: [], mentioned: sql, state: { seen: new Set(), seq: 1 } });
			expect(db.prepare("SELECT count(*) FROM tags").pluck().get()).toBe(3);
			expect(distinctCount(db, "tags", "kind")).toBe(3);
		} finally {
			db.close();
		}
	});
});

describe("tablesNamedIn()", () => {
	it.each([
		['CREATE UNIQUE INDEX "u" ON `users` (email)', ["users"]],
		[
			'INSERT INTO "new_users" (id) SELECT id FROM users JOIN teams USING (id)',
			["new_users", "users", "teams"],
		],
		["UPDATE posts SET a = 1", ["posts"]],
	])("%s", (sql, tables) => {
		expect(tablesNamedIn(sql)).toEqual(tables);
	});
});
