import { describe, expect, it } from "vitest";
import { fillTables, newFillState, tablesNamedIn } from "../../../ci/migrations/fill.ts";
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
		state: newFillState(),
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
			fillTables(db, { rows: 3, exclude: [], mentioned: sql, state: newFillState() });
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

/** Fills the tables `sql` creates on a fresh database; the rows written, and the database. */
function fill(
	sql: string,
	options: { rows?: number; exclude?: string[]; mentioned?: string } = {},
) {
	const db = openD1LikeDatabase();
	db.exec(sql);
	const state = newFillState();
	const written = fillTables(db, {
		rows: options.rows ?? 3,
		exclude: options.exclude ?? [],
		mentioned: options.mentioned ?? sql,
		state,
		origin: "migrations/0001_a.sql",
		distinct: "all",
	});
	return { db, written, empty: [...state.empty.values()] };
}

const count = (db: ReturnType<typeof openD1LikeDatabase>, table: string) =>
	db.prepare(`SELECT count(*) FROM ${table}`).pluck().get();

describe("fillTables() values", () => {
	// Two rows with seq 1 and 2: each value of the column's affinity (sqlite.org/datatype3.html).
	it.each([
		["INTEGER", "n", [1, 2], "integer"],
		// SQLite's rule 1: a type naming INT has INTEGER affinity, whatever else it names.
		["INTTEXT", "n", [1, 2], "integer"],
		["varchar(20)", "label", ["label-1", "label-2"], "text"],
		["TEXT", "o'clock", ["o'clock-1", "o'clock-2"], "text"],
		["TEXT", "created_at", ["2026-01-02 00:00:00", "2026-01-03 00:00:00"], "text"],
		["DATETIME", "seen", ["2026-01-02 00:00:00", "2026-01-03 00:00:00"], "text"],
		["TIMESTAMP TEXT", "seen", ["2026-01-02 00:00:00", "2026-01-03 00:00:00"], "text"],
		["BLOB", "raw", [Buffer.from([1]), Buffer.from([2])], "blob"],
		["REAL", "score", [1.5, 2.5], "real"],
		["DOUBLE PRECISION", "score", [1.5, 2.5], "real"],
		["FLOAT", "score", [1.5, 2.5], "real"],
		["BOOLEAN", "active", [1, 0], "integer"],
		["NUMERIC", "amount", [1, 2], "integer"],
		["", "anything", [1, 2], "integer"],
	])("gives a %s column %s the values %j", (type, name, values, storage) => {
		const column = `"${name}"`;
		const { db, written } = fill(`CREATE TABLE v (id INTEGER PRIMARY KEY, ${column} ${type});`, {
			rows: 2,
		});
		try {
			expect(written).toBe(2);
			expect(db.prepare(`SELECT ${column} FROM v ORDER BY id`).pluck().all()).toEqual(values);
			expect(db.prepare(`SELECT DISTINCT typeof(${column}) FROM v`).pluck().all()).toEqual([
				storage,
			]);
		} finally {
			db.close();
		}
	});

	it("keeps an INTEGER PRIMARY KEY far from the small ids seed rows use", () => {
		const { db } = fill("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, y TEXT);");
		try {
			expect(db.prepare("SELECT id FROM t ORDER BY id").pluck().all()).toEqual([
				1_000_000_001, 1_000_000_002, 1_000_000_003,
			]);
		} finally {
			db.close();
		}
	});

	it("gives a composite INTEGER key its own values, not the rowid-alias ids", () => {
		const { db } = fill("CREATE TABLE t (a INTEGER, b INTEGER, PRIMARY KEY (a, b));", { rows: 2 });
		try {
			expect(db.prepare("SELECT a, b FROM t ORDER BY a").raw().all()).toEqual([
				[1, 1],
				[2, 2],
			]);
		} finally {
			db.close();
		}
	});

	it.each([
		[
			"a column named with regex characters",
			`CREATE TABLE t ("a.b" TEXT CHECK ("a.b" IN ('x', 'y')));`,
		],
		["a lower-case in", "CREATE TABLE t (kind TEXT CHECK (kind in ('x', 'y')));"],
		["a numeric list", "CREATE TABLE t (kind INTEGER CHECK (kind IN (-7, 9)));"],
	])("takes the first literal of a CHECK (col IN (...)) for %s", (_, sql) => {
		const { db, written } = fill(sql);
		try {
			expect(written).toBe(3);
			const values = db.prepare("SELECT DISTINCT * FROM t").pluck().all();
			expect(values).toHaveLength(1);
			expect(["x", -7]).toContain(values[0]);
		} finally {
			db.close();
		}
	});
});

describe("fillTables() tables", () => {
	it("fills a table whose name needs quoting", () => {
		const { db, written } = fill(`CREATE TABLE "say ""hi""" (x TEXT, "col ""q""" TEXT);`);
		try {
			expect(written).toBe(3);
			expect(count(db, `"say ""hi"""`)).toBe(3);
		} finally {
			db.close();
		}
	});

	it.each([
		[
			"the excluded ledger, in any case",
			"CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY, name TEXT);",
			"d1_migrations",
			["D1_Migrations"],
		],
		[
			"D1's own _cf_ tables",
			"CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB);",
			"_cf_KV",
			[],
		],
	])("never fills %s", (_, sql, table, exclude) => {
		const { db, written } = fill(sql, { exclude });
		try {
			expect(written).toBe(0);
			expect(count(db, table)).toBe(0);
		} finally {
			db.close();
		}
	});

	it("never writes SQLite's own tables (sqlite_sequence), even when a migration names them", () => {
		const sql = "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);";
		const { db, written } = fill(sql, { mentioned: `${sql}\nUPDATE TABLE sqlite_sequence` });
		try {
			expect(written).toBe(3);
			expect(db.prepare("SELECT name, seq FROM sqlite_sequence").raw().all()).toEqual([
				["items", 1_000_000_003],
			]);
		} finally {
			db.close();
		}
	});

	it("tops a table up to the rows asked for, and fills each table version once", () => {
		const db = openD1LikeDatabase();
		try {
			const sql = "CREATE TABLE logs (msg TEXT);";
			db.exec(`${sql} INSERT INTO logs VALUES ('seed');`);
			const state = newFillState();
			const options = { rows: 3, exclude: [], mentioned: sql, state };
			expect(fillTables(db, options)).toBe(2);
			expect(count(db, "logs")).toBe(3);
			expect(fillTables(db, options)).toBe(0);
			// The same table again (unchanged since its fill): not refilled, even when emptied.
			db.exec("DELETE FROM logs");
			expect(fillTables(db, options)).toBe(0);
			db.exec("ALTER TABLE logs ADD COLUMN level INTEGER; DELETE FROM logs;");
			expect(fillTables(db, { ...options, mentioned: "ALTER TABLE logs ADD COLUMN level" })).toBe(
				3,
			);
			expect(db.prepare("SELECT count(level) FROM logs").pluck().get()).toBe(3);
		} finally {
			db.close();
		}
	});

	it("writes a table whose every column has a default with DEFAULT VALUES", () => {
		const { db, written } = fill("CREATE TABLE d (a TEXT DEFAULT 'x', b INTEGER DEFAULT 4);");
		try {
			expect(written).toBe(3);
			expect(db.prepare("SELECT DISTINCT a || b FROM d").pluck().all()).toEqual(["x4"]);
		} finally {
			db.close();
		}
	});

	it("leaves generated columns to SQLite", () => {
		const { db, written } = fill(
			"CREATE TABLE g (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL);",
		);
		try {
			expect(written).toBe(3);
			expect(db.prepare("SELECT b FROM g ORDER BY a").pluck().all()).toEqual([2, 4, 6]);
		} finally {
			db.close();
		}
	});

	it("writes each row on its own when one of them breaks a CHECK, and counts only those written", () => {
		// No retry style makes an even number odd: the row of seq 2 stays out.
		const { db, written, empty } = fill("CREATE TABLE c (n INTEGER CHECK (n % 2 = 1), m TEXT);");
		try {
			expect(written).toBe(2);
			expect(db.prepare("SELECT n, m FROM c ORDER BY n").raw().all()).toEqual([
				[1, "m-1"],
				[3, "m-3"],
			]);
			expect(empty).toEqual([]);
		} finally {
			db.close();
		}
	});

	it.each([
		["a LIKE pattern", "email TEXT NOT NULL CHECK (email LIKE '%@%.%')"],
		["an upper-case code", "code TEXT NOT NULL CHECK (code = upper(code))"],
		["a lower-case slug", "slug TEXT NOT NULL CHECK (slug = lower(slug) AND slug LIKE '%@%')"],
		["a JSON document", "doc TEXT NOT NULL CHECK (json_valid(doc) AND json_type(doc) = 'object')"],
		["a column without a type", "email NOT NULL CHECK (email LIKE '%@%')"],
		["a date range", "starts_at TEXT NOT NULL, ends_at TEXT NOT NULL, CHECK (starts_at < ends_at)"],
		["a text range", "s TEXT NOT NULL, e TEXT NOT NULL, CHECK (s < e)"],
		["a rating from 1 to 5", "rating INTEGER NOT NULL CHECK(rating BETWEEN 1 AND 5)"],
		["a number range", "low INTEGER NOT NULL, high INTEGER NOT NULL, CHECK (low < high)"],
	])("meets a common CHECK shape the plain values miss: %s", (_, columns) => {
		const { db, written, empty } = fill(`CREATE TABLE t (id INTEGER PRIMARY KEY, ${columns});`);
		try {
			expect([written, empty]).toEqual([3, []]);
		} finally {
			db.close();
		}
	});

	it("says which table it left empty and why: a CHECK no style meets, a parent with no row", () => {
		const { db, written, empty } = fill(
			"CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT NOT NULL CHECK (v GLOB '[0-9][0-9][0-9]-x'));\nCREATE TABLE c (a_id INTEGER NOT NULL REFERENCES a (id));",
		);
		try {
			expect(written).toBe(0);
			expect(empty).toEqual([
				{
					table: "a",
					reason: "CHECK constraint failed: v GLOB '[0-9][0-9][0-9]-x'",
					path: "migrations/0001_a.sql",
				},
				{
					table: "c",
					reason: "its parent table a has no row to point at",
					path: "migrations/0001_a.sql",
				},
			]);
		} finally {
			db.close();
		}
	});

	it("writes nothing, and does not throw, when a NOT NULL foreign key has no parent row", () => {
		const { db, written } = fill(
			"CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p_id INTEGER NOT NULL REFERENCES p (id));",
			{ mentioned: "CREATE TABLE c" },
		);
		try {
			expect(written).toBe(0);
			expect(count(db, "c")).toBe(0);
		} finally {
			db.close();
		}
	});
});

describe("fillTables() foreign keys", () => {
	it("fills a parent before its child, whatever the order and case the migration names them in", () => {
		const { db, written } = fill(
			"CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES Parent (id));\nCREATE TABLE parent (id INTEGER PRIMARY KEY);",
		);
		try {
			expect(written).toBe(6);
			expect(count(db, "child")).toBe(3);
			expect(db.prepare("SELECT count(*) FROM pragma_foreign_key_check").pluck().get()).toBe(0);
		} finally {
			db.close();
		}
	});

	it("fills two tables that point at each other (a cycle) on the last pass", () => {
		const { db, written } = fill(
			"CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES b (id));\nCREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a (id));",
		);
		try {
			expect(written).toBe(6);
			expect(count(db, "a")).toBe(3);
			expect(count(db, "b")).toBe(3);
		} finally {
			db.close();
		}
	});

	it("points a keyed foreign key at a distinct parent per row, and a plain one at a repeated parent", () => {
		const db = openD1LikeDatabase();
		try {
			const sql = `CREATE TABLE parent (x INTEGER, y INTEGER, UNIQUE (x, y));
CREATE TABLE other (id INTEGER PRIMARY KEY);
CREATE TABLE users (id INTEGER PRIMARY KEY);
CREATE TABLE child (a INTEGER UNIQUE, b INTEGER, d INTEGER REFERENCES other (id), FOREIGN KEY (a, b) REFERENCES parent (x, y));
CREATE TABLE profile (user_id INTEGER PRIMARY KEY REFERENCES users (id), bio TEXT);`;
			db.exec(sql);
			fillTables(db, { rows: 3, exclude: [], mentioned: sql, state: newFillState() });
			expect(count(db, "child")).toBe(3);
			expect(count(db, "profile")).toBe(3);
			// a is UNIQUE: its composite key (a, b) names three parent rows; d repeats one of them.
			expect(db.prepare("SELECT count(DISTINCT a || ',' || b) FROM child").pluck().get()).toBe(3);
			expect(db.prepare("SELECT count(DISTINCT d) FROM child").pluck().get()).toBe(2);
			expect(db.prepare("SELECT count(*) FROM pragma_foreign_key_check").pluck().get()).toBe(0);
		} finally {
			db.close();
		}
	});

	it("repeats a column outside every key even when a unique index covers the first column", () => {
		const db = openD1LikeDatabase();
		try {
			const sql = "CREATE TABLE t (code TEXT UNIQUE, x TEXT);";
			db.exec(sql);
			fillTables(db, { rows: 3, exclude: [], mentioned: sql, state: newFillState() });
			expect(distinctCount(db, "t", "code")).toBe(3);
			expect(distinctCount(db, "t", "x")).toBe(2);
		} finally {
			db.close();
		}
	});
});

describe("fillTables() duplicates", () => {
	it("repeats only the second row: the others stay distinct outside the keys too", () => {
		const db = openD1LikeDatabase();
		try {
			const sql = "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);";
			db.exec(sql);
			fillTables(db, { rows: 4, exclude: [], mentioned: sql, state: newFillState() });
			expect(db.prepare("SELECT x FROM t ORDER BY id").pluck().all()).toEqual([
				"x-1",
				"x-1",
				"x-3",
				"x-4",
			]);
		} finally {
			db.close();
		}
	});
});
