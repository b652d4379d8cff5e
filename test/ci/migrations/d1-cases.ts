// One table of migrations with D1's verdict on each, checked against workerd's own D1 through
// Miniflare (d1-rules.e2e.test.ts) and driven through lint, the replay and the loopback D1
// (d1-rules.test.ts), so the three stay with the source: ci/migrations/d1-rules.ts.

export interface D1Case {
	name: string;
	sql: string;
	d1: "accepts" | "refuses";
	/** The lint error code for a refusal lint can see in the text; null: only a replay can see it. */
	lint?: string | null;
	/** Why the loopback D1 (test/support/d1-database.ts) answers otherwise: a known gap, skipped there. */
	loopbackGap?: string;
	/** The text D1 stores for these views and triggers after the migration (sqlite_schema.sql). */
	stored?: Record<string, string>;
}

const columns = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(", ");
const selects = (n: number) =>
	Array.from({ length: n }, (_, i) => `SELECT ${i}`).join(" UNION ALL ");
const ors = (n: number) => Array.from({ length: n }, (_, i) => `a = ${i}`).join(" OR ");
const long = "x".repeat(60);
// A trigger and a view written with double-quoted strings, as a team relying on DQS writes them.
const DQS_SCHEMA = `CREATE TABLE t (id INTEGER PRIMARY KEY, status TEXT, other TEXT);
CREATE TABLE log (m);
CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET status = "done" WHERE id = new.id; INSERT INTO log VALUES ("hi"); END;
CREATE VIEW v AS SELECT id, "lit" AS k FROM t WHERE status = "done";`;
// A chain of n triggers, each inserting into the next table (n + 1 tables).
const triggerChain = (n: number) =>
	[
		...Array.from({ length: n + 1 }, (_, i) => `CREATE TABLE t${i} (a);`),
		...Array.from(
			{ length: n },
			(_, i) =>
				`CREATE TRIGGER g${i} AFTER INSERT ON t${i} BEGIN INSERT INTO t${i + 1} (a) VALUES (new.a); END;`,
		),
	].join("\n");
// n child tables, each referencing the one before with ON DELETE CASCADE.
const cascadeChain = (n: number) =>
	[
		"CREATE TABLE p0 (id INTEGER PRIMARY KEY);",
		...Array.from(
			{ length: n },
			(_, i) =>
				`CREATE TABLE p${i + 1} (id INTEGER PRIMARY KEY, up INTEGER REFERENCES p${i}(id) ON DELETE CASCADE);`,
		),
	].join("\n");
// n tables whose primary key references the one before with ON UPDATE CASCADE.
const keyChain = (n: number) =>
	[
		"CREATE TABLE q0 (id INTEGER PRIMARY KEY);",
		...Array.from(
			{ length: n },
			(_, i) =>
				`CREATE TABLE q${i + 1} (id INTEGER PRIMARY KEY REFERENCES q${i}(id) ON UPDATE CASCADE);`,
		),
	].join("\n");
// A chain of n UPDATE OF a triggers, each setting a in the next table.
const updateChain = (n: number) =>
	[
		...Array.from({ length: n + 1 }, (_, i) => `CREATE TABLE u${i} (a, b);`),
		...Array.from(
			{ length: n },
			(_, i) =>
				`CREATE TRIGGER h${i} AFTER UPDATE OF a ON u${i} BEGIN UPDATE u${i + 1} SET a = new.a; END;`,
		),
	].join("\n");
const wide = (prefix: string, n: number) =>
	Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(", ");
const twoWide = (n: number) =>
	`CREATE TABLE a (${wide("a", n)});\nCREATE TABLE b (${wide("b", n)});`;

export const D1_CASES: readonly D1Case[] = [
	{
		name: "101 columns",
		sql: `CREATE TABLE w (${columns(101)});`,
		d1: "refuses",
		lint: "D1_LIMIT",
	},
	{ name: "100 columns", sql: `CREATE TABLE w (${columns(100)});`, d1: "accepts" },
	{
		name: "ADD COLUMN past 100",
		sql: `CREATE TABLE w (${columns(100)});\nALTER TABLE w ADD COLUMN extra TEXT;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "7-term compound SELECT",
		sql: `CREATE TABLE t (a);\nINSERT INTO t (a) ${selects(7)};`,
		d1: "refuses",
		lint: "D1_LIMIT",
	},
	{
		name: "5-term compound SELECT",
		sql: `CREATE TABLE t (a);\nINSERT INTO t (a) ${selects(5)};`,
		d1: "accepts",
	},
	{
		name: "sqlite_version()",
		sql: "CREATE TABLE meta (v TEXT);\nINSERT INTO meta (v) SELECT sqlite_version();",
		d1: "refuses",
		lint: "D1_FUNCTION",
	},
	{
		name: "a refused function in a DEFAULT",
		sql: "CREATE TABLE meta (v TEXT DEFAULT (sqlite_version()));",
		d1: "refuses",
		lint: "D1_FUNCTION",
	},
	{
		name: "power()",
		sql: "CREATE TABLE t (a);\nINSERT INTO t (a) VALUES (power(2, 3));",
		d1: "refuses",
		lint: "D1_FUNCTION",
	},
	{
		name: "allowed functions",
		sql: "CREATE TABLE t (a);\nINSERT INTO t (a) SELECT coalesce(json_extract('{\"a\":1}', '$.a'), abs(-1), pow(2, 3));",
		d1: "accepts",
	},
	{ name: "fts5", sql: "CREATE VIRTUAL TABLE docs USING fts5(body);", d1: "accepts" },
	{
		name: "fts5vocab",
		sql: "CREATE VIRTUAL TABLE docs USING fts5(body);\nCREATE VIRTUAL TABLE docs_v USING fts5vocab(docs, 'row');",
		d1: "accepts",
	},
	{ name: "rtree", sql: "CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1);", d1: "accepts" },
	{
		name: "RTREE_I32",
		sql: "CREATE VIRTUAL TABLE boxes USING RTREE_I32(id, x0, x1);",
		d1: "accepts",
	},
	{
		name: "fts4",
		sql: "CREATE VIRTUAL TABLE docs USING fts4(body);",
		d1: "refuses",
		lint: "D1_VIRTUAL_TABLE",
	},
	{
		name: "PRAGMA journal_mode",
		sql: "PRAGMA journal_mode = WAL;",
		d1: "refuses",
		lint: "D1_PRAGMA",
	},
	{
		name: "PRAGMA page_size = N",
		sql: "PRAGMA page_size = 4096;",
		d1: "refuses",
		lint: "D1_PRAGMA",
	},
	{
		name: "PRAGMA foreign_keys = maybe",
		sql: "PRAGMA foreign_keys = maybe;",
		d1: "refuses",
		lint: "D1_PRAGMA",
	},
	{
		name: "PRAGMA temp.*",
		sql: "PRAGMA temp.defer_foreign_keys = ON;",
		d1: "refuses",
		lint: "D1_PRAGMA",
	},
	{
		name: "PRAGMA table_info without a table",
		sql: "PRAGMA table_info;",
		d1: "refuses",
		lint: "D1_PRAGMA",
	},
	{ name: "PRAGMA in mixed case", sql: "PRAGMA Defer_Foreign_Keys = ON;", d1: "accepts" },
	{ name: "PRAGMA boolean prefix", sql: "PRAGMA defer_foreign_keys = 'On';", d1: "accepts" },
	{ name: "PRAGMA optimize(0x10002)", sql: "PRAGMA optimize(0x10002);", d1: "accepts" },
	{ name: "PRAGMA main.*", sql: "PRAGMA main.defer_foreign_keys = ON;", d1: "accepts" },
	{
		name: "CREATE TEMP TABLE",
		sql: "CREATE TEMP TABLE scratch (a);",
		d1: "refuses",
		lint: "D1_TEMP_OBJECT",
	},
	{
		name: "temp. schema",
		sql: "CREATE TABLE temp.scratch (a);",
		d1: "refuses",
		lint: "D1_TEMP_OBJECT",
	},
	{ name: "ATTACH", sql: "ATTACH DATABASE 'other.db' AS other;", d1: "refuses", lint: "D1_ATTACH" },
	{
		name: "BEGIN",
		sql: "BEGIN;\nCREATE TABLE t (a);\nCOMMIT;",
		d1: "refuses",
		lint: "D1_TRANSACTION",
	},
	{
		name: "_CF_ table",
		sql: "CREATE TABLE _CF_mine (a);",
		d1: "refuses",
		lint: "D1_RESERVED_NAME",
	},
	{
		name: "rename to _cf_",
		sql: "CREATE TABLE t (a);\nALTER TABLE t RENAME TO _cf_t;",
		d1: "refuses",
		lint: "D1_RESERVED_NAME",
	},
	{ name: "_cf_ column", sql: "CREATE TABLE t (_cf_a TEXT);", d1: "accepts" },
	{
		name: "rename a column to _cf_",
		sql: "CREATE TABLE t (a);\nALTER TABLE t RENAME COLUMN a TO _cf_a;",
		d1: "accepts",
	},
	{
		name: "LIKE pattern over 50 bytes on a row",
		sql: `CREATE TABLE t (a);\nINSERT INTO t (a) VALUES ('x');\nDELETE FROM t WHERE a LIKE '${long}';`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "LIKE pattern over 50 bytes on no rows",
		sql: `CREATE TABLE t (a);\nDELETE FROM t WHERE a LIKE '${long}';`,
		d1: "accepts",
	},
	{
		name: "expression deeper than 100",
		sql: `CREATE TABLE t (a);\nDELETE FROM t WHERE ${ors(100)};`,
		d1: "refuses",
		lint: "D1_LIMIT",
	},
	{
		name: "expression of depth 100",
		sql: `CREATE TABLE t (a);\nDELETE FROM t WHERE ${ors(99)};`,
		d1: "accepts",
	},
	{
		name: "101 result columns",
		sql: `CREATE TABLE t (a);\nINSERT INTO t (a) SELECT count(*) FROM (SELECT ${Array.from({ length: 101 }, (_, i) => i).join(", ")});`,
		d1: "refuses",
		lint: "D1_LIMIT",
	},
	{
		// A view's columns are resolved when it is used, not when it is created.
		name: "a view of 101 columns",
		sql: `CREATE VIEW v AS SELECT ${Array.from({ length: 101 }, (_, i) => i).join(", ")};`,
		d1: "accepts",
	},
	// SQLITE_LIMIT_TRIGGER_DEPTH 10, checked while compiling (SQLite trigger.c codeRowTrigger()):
	// refused on empty tables; FK actions are trigger programs too.
	{
		name: "11 nested triggers",
		sql: `${triggerChain(11)}\nINSERT INTO t0 (a) SELECT a FROM t0 WHERE 0;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "10 nested triggers",
		sql: `${triggerChain(10)}\nINSERT INTO t0 (a) VALUES (1);`,
		d1: "accepts",
	},
	{ name: "11 nested triggers, only created", sql: triggerChain(11), d1: "accepts" },
	{
		name: "11 nested triggers, entered at the second",
		sql: `${triggerChain(11)}\nINSERT INTO t1 (a) VALUES (1);`,
		d1: "accepts",
	},
	{
		name: "11 nested ON DELETE CASCADE",
		sql: `${cascadeChain(11)}\nDELETE FROM p0;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "DROP TABLE over 11 nested ON DELETE CASCADE",
		sql: `${cascadeChain(11)}\nDROP TABLE p0;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "10 nested ON DELETE CASCADE",
		sql: `${cascadeChain(10)}\nDELETE FROM p0;`,
		d1: "accepts",
	},
	{
		// Each statement of a request is compiled once the ones before it ran.
		name: "11 nested triggers, one dropped before the INSERT",
		sql: `${triggerChain(11)}\nDROP TRIGGER g5;\nINSERT INTO t0 (a) VALUES (1);`,
		d1: "accepts",
	},
	{
		name: "INSERT over 11 nested ON DELETE CASCADE",
		sql: `${cascadeChain(11)}\nINSERT INTO p0 (id) VALUES (1);`,
		d1: "accepts",
	},
	{
		name: "UPDATE through 11 nested UPDATE OF triggers",
		sql: `${updateChain(11)}\nUPDATE u0 SET a = 1;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "UPDATE of a column no trigger watches",
		sql: `${updateChain(11)}\nUPDATE u0 SET b = 1;`,
		d1: "accepts",
	},
	{
		name: "UPDATE through 11 nested ON UPDATE CASCADE",
		sql: `${keyChain(11)}\nUPDATE q0 SET id = id + 1;`,
		d1: "refuses",
		lint: null,
	},
	{
		// Each child's cascaded column is not the key its own children reference: one level only.
		name: "ON UPDATE CASCADE that changes no referenced key",
		sql: `${cascadeChain(11).replaceAll("ON DELETE CASCADE", "ON UPDATE CASCADE")}\nUPDATE p0 SET id = id + 1;`,
		d1: "accepts",
	},
	// SQLITE_LIMIT_COLUMN on the result set once `*` is expanded (SQLite select.c selectExpander()).
	{
		name: "SELECT * over 120 columns",
		sql: `${twoWide(60)}\nCREATE TABLE c AS SELECT * FROM a, b;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "SELECT a.*, b.* over 120 columns",
		sql: `${twoWide(60)}\nCREATE TABLE c AS SELECT a.*, b.* FROM a, b;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "SELECT * over 120 columns in a subquery",
		sql: `${twoWide(60)}\nCREATE TABLE c (x);\nINSERT INTO c SELECT 1 WHERE EXISTS (SELECT * FROM a, b);`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "SELECT * over a table rebuilt narrower first",
		sql: `${twoWide(60)}\nDROP TABLE b;\nCREATE TABLE b (b0);\nCREATE TABLE c AS SELECT * FROM a, b;`,
		d1: "accepts",
	},
	{
		name: "SELECT * over 100 columns",
		sql: `${twoWide(50)}\nCREATE TABLE c AS SELECT * FROM a, b;`,
		d1: "accepts",
	},
	{
		name: "a view SELECT * of 120 columns, created",
		sql: `${twoWide(60)}\nCREATE VIEW v AS SELECT * FROM a, b;`,
		d1: "accepts",
	},
	{
		name: "a view SELECT * of 120 columns, used",
		sql: `${twoWide(60)}\nCREATE VIEW v AS SELECT * FROM a, b;\nCREATE TABLE c (x);\nINSERT INTO c SELECT count(*) FROM v;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "a view SELECT * of 120 columns, dropped",
		sql: `${twoWide(60)}\nCREATE VIEW v AS SELECT * FROM a, b;\nDROP VIEW v;`,
		d1: "accepts",
	},
	{
		name: "SELECT *, length(a0) over 120 columns",
		sql: `${twoWide(60)}\nCREATE TABLE c AS SELECT *, length(a0) FROM a, b;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "a view of 101 listed columns, used",
		sql: `CREATE VIEW v AS SELECT ${Array.from({ length: 101 }, (_, i) => i).join(", ")};\nCREATE TABLE c (x);\nINSERT INTO c SELECT count(*) FROM v;`,
		d1: "refuses",
		lint: null,
	},
	{
		name: "a view over a view of 120 columns, created",
		sql: `${twoWide(60)}\nCREATE VIEW v AS SELECT * FROM a, b;\nCREATE VIEW counted AS SELECT count(*) AS n FROM v;`,
		d1: "accepts",
	},
	// workerd builds SQLite without SQLITE_DQS (build/BUILD.sqlite3) and leaves DQS on.
	{
		name: "a double-quoted name that matches no column",
		sql: 'CREATE TABLE t (a);\nINSERT INTO t (a) VALUES ("nope");',
		d1: "accepts",
	},
	{
		name: "a double-quoted name with quotes inside",
		sql: 'CREATE TABLE t (a);\nINSERT INTO t (a) VALUES ("say ""hi""");',
		d1: "accepts",
	},
	{
		name: "300 double-quoted names in the rows of one INSERT",
		sql: `CREATE TABLE t (a);\nINSERT INTO t (a) VALUES ${Array.from({ length: 300 }, (_, i) => `("n${i}")`).join(", ")};`,
		d1: "accepts",
	},
	{
		name: "300 double-quoted names in one IN list over a table",
		sql: `CREATE TABLE t (a);\nDELETE FROM t WHERE a IN (${Array.from({ length: 300 }, (_, i) => `"n${i}"`).join(", ")});`,
		d1: "accepts",
	},
	// A trigger's WHEN and body are resolved when it fires (SQLite trigger.c codeRowTrigger()).
	{
		name: "a double-quoted name in a trigger body, fired",
		sql: 'CREATE TABLE t (a);\nCREATE TABLE log (m);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ("hello"); END;\nINSERT INTO t (a) VALUES (1);',
		d1: "accepts",
	},
	{
		name: "a double-quoted name in a trigger's WHEN, fired",
		sql: "CREATE TABLE t (a);\nCREATE TABLE log (m);\nCREATE TRIGGER tr AFTER INSERT ON t WHEN new.a = \"x\" BEGIN INSERT INTO log VALUES (new.a); END;\nINSERT INTO t (a) VALUES ('x');",
		d1: "accepts",
	},
	{
		name: "a qualified name in a trigger body that matches no column, fired",
		sql: 'CREATE TABLE t (a);\nCREATE TABLE log (m);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new."nope"); END;\nINSERT INTO t (a) VALUES (1);',
		d1: "refuses",
		lint: null,
	},
	{
		name: "a [bracketed] name that matches no column",
		sql: 'CREATE TABLE t (a, b);\nINSERT INTO t (a, b) VALUES ("x", [x]);',
		d1: "refuses",
		lint: null,
	},
	{
		name: "a trigger body SELECT * of 120 columns, created",
		sql: `${twoWide(60)}\nCREATE TABLE c (x);\nCREATE TRIGGER tg AFTER INSERT ON c BEGIN INSERT INTO c SELECT count(*) FROM (SELECT * FROM a, b); END;`,
		d1: "accepts",
	},
	// ALTER TABLE checks every view and trigger (SQLite alter.c renameTestSchema()); RENAME COLUMN and
	// DROP COLUMN first rewrite their double-quoted strings single-quoted (renameFixQuotes()).
	{
		name: "RENAME TO over a trigger and a view with double-quoted strings",
		sql: `${DQS_SCHEMA}\nALTER TABLE t RENAME TO t2;`,
		d1: "accepts",
		stored: {
			tr: 'CREATE TRIGGER tr AFTER INSERT ON "t2" BEGIN UPDATE "t2" SET status = "done" WHERE id = new.id; INSERT INTO log VALUES ("hi"); END',
			v: 'CREATE VIEW v AS SELECT id, "lit" AS k FROM "t2" WHERE status = "done"',
		},
	},
	{
		name: "RENAME COLUMN over a trigger and a view with double-quoted strings",
		sql: `${DQS_SCHEMA}\nALTER TABLE t RENAME COLUMN status TO state;`,
		d1: "accepts",
		stored: {
			tr: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET state = 'done' WHERE id = new.id; INSERT INTO log VALUES ('hi'); END",
			v: "CREATE VIEW v AS SELECT id, 'lit' AS k FROM t WHERE state = 'done'",
		},
	},
	{
		name: "RENAME (COLUMN) of another table's column to a double-quoted string's text",
		sql: `${DQS_SCHEMA}\nALTER TABLE log RENAME m TO done;`,
		d1: "accepts",
		stored: {
			tr: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET status = 'done' WHERE id = new.id; INSERT INTO log VALUES ('hi'); END",
			v: "CREATE VIEW v AS SELECT id, 'lit' AS k FROM t WHERE status = 'done'",
		},
	},
	{
		name: "DROP COLUMN over a trigger and a view with double-quoted strings",
		sql: `${DQS_SCHEMA}\nALTER TABLE t DROP COLUMN other;`,
		d1: "accepts",
		stored: {
			tr: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET status = 'done' WHERE id = new.id; INSERT INTO log VALUES ('hi'); END",
			v: "CREATE VIEW v AS SELECT id, 'lit' AS k FROM t WHERE status = 'done'",
		},
	},
	{
		name: "ADD COLUMN over a trigger and a view with double-quoted strings",
		sql: `${DQS_SCHEMA}\nALTER TABLE t ADD COLUMN extra TEXT;`,
		d1: "accepts",
		stored: {
			tr: 'CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET status = "done" WHERE id = new.id; INSERT INTO log VALUES ("hi"); END',
			v: 'CREATE VIEW v AS SELECT id, "lit" AS k FROM t WHERE status = "done"',
		},
	},
	{
		name: "RENAME COLUMN over a trigger mixing double-quoted columns and strings",
		sql: 'CREATE TABLE t (a, b);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET "b" = "a" || "x" WHERE "a" = "y"; END;\nCREATE TRIGGER tr2 AFTER INSERT ON t BEGIN SELECT "z"; END;\nALTER TABLE t RENAME COLUMN a TO c;',
		d1: "accepts",
		stored: {
			tr: 'CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET "b" = "c" || \'x\' WHERE "c" = \'y\'; END',
			tr2: "CREATE TRIGGER tr2 AFTER INSERT ON t BEGIN SELECT 'z'; END",
		},
	},
	{
		name: "RENAME TO over a trigger naming a missing qualified column",
		sql: 'CREATE TABLE t (a);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = new."nope"; END;\nALTER TABLE t RENAME TO t2;',
		d1: "refuses",
		lint: null,
	},
];
