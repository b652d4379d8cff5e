// One table of migrations with D1's verdict on each, checked against workerd's own D1 through
// Miniflare (d1-rules.e2e.test.ts) and driven through lint, the replay and the loopback D1
// (d1-rules.test.ts), so the three stay with the source: ci/migrations/d1-rules.ts.

export interface D1Case {
	name: string;
	sql: string;
	d1: "accepts" | "refuses";
	/** The lint error code for a refusal lint can see in the text; null: only a replay can see it. */
	lint?: string | null;
}

const columns = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(", ");
const selects = (n: number) =>
	Array.from({ length: n }, (_, i) => `SELECT ${i}`).join(" UNION ALL ");
const ors = (n: number) => Array.from({ length: n }, (_, i) => `a = ${i}`).join(" OR ");
const long = "x".repeat(60);

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
];
