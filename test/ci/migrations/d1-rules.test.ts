import { describe, expect, it } from "vitest";
import type { Migration } from "../../../ci/migrations/catalog.ts";
import {
	checkD1Statement,
	countColumnDefinitions,
	D1_NOT_AUTHORIZED,
	D1_TRANSACTION_MESSAGE,
	type D1Rule,
	exceedsD1RequestLength,
	isD1AllowedPragma,
	mayBreakD1Rules,
	mayBreakD1RulesOnce,
	parseRowChange,
	parseTriggerProgram,
	planTriggerPrograms,
	triggerDepth,
} from "../../../ci/migrations/d1-rules.ts";
import { lintMigration } from "../../../ci/migrations/lint.ts";
import { openD1LikeDatabase, replayMigrations } from "../../../ci/migrations/replay.ts";
import { splitStatements } from "../../../ci/migrations/sql.ts";
import { D1DatabaseState } from "../../support/d1-database.ts";
import { D1_CASES } from "./d1-cases.ts";

const migration = (sql: string): Migration =>
	({ name: "0001_case.sql", path: "migrations/0001_case.sql", sql, readable: true }) as Migration;

describe("D1's rules through lint, the replay and the loopback D1", () => {
	it.each(D1_CASES)("lint: $name ($d1)", ({ sql, d1, lint }) => {
		const errors = lintMigration({ name: "0001_case.sql", content: sql })
			.filter((f) => f.severity === "error")
			.map((f) => f.code);
		if (d1 === "accepts" || lint === null) expect(errors).toEqual([]);
		else expect(errors).toContain(lint);
	});

	it.each(D1_CASES)("replay: $name ($d1)", ({ sql, d1 }) => {
		const result = replayMigrations([migration(sql)]);
		expect(result.ok, JSON.stringify(result.failure)).toBe(d1 === "accepts");
	});

	// Known gaps of the stand-in are skipped by name (D1Case.loopbackGap says why).
	it.each(D1_CASES.filter((c) => c.loopbackGap === undefined))(
		"loopback D1: $name ($d1)",
		({ sql, d1 }) => {
			const state = new D1DatabaseState({ uuid: "case", name: "case" });
			try {
				const run = () => state.execute([{ sql }]);
				if (d1 === "accepts") run();
				else expect(run).toThrow();
			} finally {
				state.close();
			}
		},
	);
});

const STORED =
	"SELECT name, sql FROM sqlite_schema WHERE type IN ('trigger', 'view') ORDER BY name";
const storedCases = D1_CASES.filter((c) => c.stored !== undefined);

// The text D1 keeps is what the schema snapshot and every later migration see.
describe("the views and triggers D1 stores (d1-cases.ts stored)", () => {
	it.each(storedCases)("replay: $name", ({ sql, stored }) => {
		const db = openD1LikeDatabase();
		try {
			const result = replayMigrations([migration(sql)], { database: db });
			expect(result.ok, JSON.stringify(result.failure)).toBe(true);
			const rows = db.prepare(STORED).all() as { name: string; sql: string }[];
			expect(Object.fromEntries(rows.map((r) => [r.name, r.sql]))).toEqual(stored);
		} finally {
			db.close();
		}
	});

	it.each(storedCases)("loopback D1: $name", ({ sql, stored }) => {
		const state = new D1DatabaseState({ uuid: "case", name: "case" });
		try {
			state.execute([{ sql }]);
			const [result] = state.execute([{ sql: STORED }]);
			expect(Object.fromEntries((result?.rows ?? []).map(([name, text]) => [name, text]))).toEqual(
				stored,
			);
		} finally {
			state.close();
		}
	});
});

describe("a request over 100 KB (workerd prepareSql(MULTI) prepares the remaining text; workers-sdk#6347)", () => {
	const insert = (n: number) =>
		`INSERT INTO t (a) VALUES ${Array.from({ length: n }, (_, i) => `('${String(i).padStart(8, "0")}')`).join(", ")};`;
	// Three statements of ~40 KB: each under the statement limit, together over it.
	const big = `CREATE TABLE t (a);\n${insert(3000)}\n${insert(3000)}\n${insert(3000)}\n`;
	const small = `CREATE TABLE t (a);\n${insert(3000)}\n${insert(3000)}\n`;

	it.each([
		[big, true],
		[small, false],
	])("loopback D1 and lint agree on %#", (sql, refused) => {
		const state = new D1DatabaseState({ uuid: "size", name: "size" });
		try {
			const run = () => state.execute([{ sql }]);
			if (refused) expect(run).toThrow("statement too long: SQLITE_TOOBIG");
			else run();
		} finally {
			state.close();
		}
		const codes = lintMigration({ name: "0001_big.sql", content: sql }).map((f) => f.code);
		expect(codes.includes("D1_REQUEST_TOO_LARGE")).toBe(refused);
		expect(codes).not.toContain("D1_STATEMENT_TOO_LARGE");
	});
});

describe("parseRowChange()", () => {
	const change = (sql: string) => parseRowChange(splitStatements(sql)[0]?.tokens ?? []);
	it.each([
		["INSERT INTO main.t (a) VALUES (1)", { table: "t", op: "INSERT" }],
		['INSERT OR IGNORE INTO "T" (a) VALUES (1)', { table: "t", op: "INSERT" }],
		["REPLACE INTO t VALUES (1)", { table: "t", op: "INSERT" }],
		["WITH x AS (SELECT 1) DELETE FROM t WHERE a IN x", { table: "t", op: "DELETE" }],
		[
			"UPDATE OR ABORT t SET a = 1, (b, c) = (2, 3) WHERE d = 4",
			{ table: "t", op: "UPDATE", columns: ["a", "b", "c"] },
		],
		["DROP TABLE IF EXISTS t", { table: "t", op: "DELETE", withoutTriggers: true }],
		["SELECT * FROM t", undefined],
		["CREATE TRIGGER g AFTER INSERT ON t BEGIN DELETE FROM u; END", undefined],
	])("%s", (sql, expected) => {
		expect(change(sql)).toEqual(expected);
	});
});

describe("triggerDepth()", () => {
	const trigger = (name: string, table: string, sql: string) => ({ name, table, sql });
	const programs = planTriggerPrograms({
		triggers: [
			trigger(
				"a_ins",
				"a",
				"CREATE TRIGGER a_ins AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); UPDATE c SET x = 1; END",
			),
			trigger(
				"b_ins",
				"b",
				"CREATE TRIGGER b_ins BEFORE INSERT ON b BEGIN INSERT INTO b VALUES (2); END",
			),
			trigger("c_upd", "c", "CREATE TRIGGER c_upd AFTER UPDATE OF y ON c BEGIN DELETE FROM a; END"),
		],
		foreignKeys: [
			{
				child: "d",
				id: 0,
				parent: "a",
				from: "a_id",
				to: null,
				onDelete: "CASCADE",
				onUpdate: "NO ACTION",
			},
			{
				child: "e",
				id: 0,
				parent: "d",
				from: "d_id",
				to: "id",
				onDelete: "SET NULL",
				onUpdate: "NO ACTION",
			},
		],
	});
	it.each([
		// a_ins (1) → b_ins (2; its own recursion is compiled once); UPDATE c SET x misses c_upd.
		[{ table: "a", op: "INSERT" }, 2],
		[{ table: "c", op: "UPDATE", columns: ["y"] }, 3],
		[{ table: "c", op: "UPDATE", columns: ["x"] }, 0],
		// DELETE FROM a: d's cascade (1), then e's SET NULL (2).
		[{ table: "a", op: "DELETE" }, 2],
		[{ table: "d", op: "INSERT" }, 0],
	] as const)("%j nests %i programs", (change, depth) => {
		expect(triggerDepth(programs, change)).toBe(depth);
	});
});

describe("mayBreakD1Rules()", () => {
	const commas = (n: number) => ",".repeat(n);
	const terms = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(", ");

	it.each([
		["commas in a string", `INSERT INTO t (a) VALUES ('${commas(300)}-${"-".repeat(50)}');`, false],
		["commas in a comment", `-- ${commas(300)}\nCREATE TABLE t (a);\n/* ${commas(300)} */`, false],
		[
			"commas in quoted names",
			`CREATE TABLE "${commas(150)}" (\`${commas(150)}\`, [${commas(150)}]);`,
			false,
		],
		["an escaped quote inside a string", `INSERT INTO t VALUES ('it''s ${commas(200)}');`, false],
		["101 columns", `CREATE TABLE w (${terms(101)});`, true],
		[
			"101 columns, a comment after each",
			`CREATE TABLE w (${terms(101).replaceAll(",", " /* x */ ,")});`,
			true,
		],
		["commas after an unterminated string count", `INSERT INTO t VALUES ('${commas(120)}`, true],
		["a string then 100 commas outside it", `SELECT 'a,b', ${terms(100)};`, true],
		["99 commas", `SELECT ${terms(100)};`, true],
		["98 commas", `SELECT ${terms(99)};`, false],
		["100 comments", `${"-- a note\n".repeat(100)}SELECT 1;`, false],
	])("%s: %s", (_name, sql, expected) => {
		expect(mayBreakD1Rules(sql)).toBe(expected);
	});

	it("should clear a whole text only when it clears each of its statements, and remember it", () => {
		const texts = [
			...D1_CASES.map((c) => c.sql),
			`-- '${commas(120)}\nINSERT INTO t VALUES ('a'); /* ${commas(120)} */ SELECT ${terms(60)};\nSELECT ${terms(60)};`,
			`INSERT INTO t VALUES ('${commas(50)}'); SELECT ${terms(99)};`,
		];
		for (const text of texts) {
			const whole = mayBreakD1RulesOnce(text);
			expect(mayBreakD1RulesOnce(text)).toBe(whole);
			expect(whole).toBe(mayBreakD1Rules(text));
			if (!whole) {
				for (const statement of splitStatements(text)) {
					expect(mayBreakD1Rules(statement.text), statement.text.slice(0, 60)).toBe(false);
				}
			}
		}
	});

	it("should pass every statement D1 refuses to the full check", () => {
		const refused = D1_CASES.filter((c) => c.d1 !== "accepts");
		for (const { sql } of refused) {
			for (const statement of splitStatements(sql)) {
				if (checkD1Statement(statement) !== undefined) {
					expect(mayBreakD1Rules(statement.text), statement.text.slice(0, 80)).toBe(true);
				}
			}
		}
	});
});

// workerd util/sqlite.c++ isAuthorized() SQLITE_PRAGMA, one row per signature edge (see d1-rules.ts).
describe("isD1AllowedPragma()", () => {
	it.each([
		[{ schema: "main", name: "foreign_keys", value: "ON" }, true],
		[{ schema: "temp", name: "foreign_keys", value: "ON" }, false],
		[{ name: "journal_mode", value: "WAL" }, false],
		[{ name: "table_list", value: "anything" }, true],
		[{ name: "data_version" }, true],
		[{ name: "page_size", value: "4096" }, false],
		[{ name: "Foreign_Keys" }, true],
		[{ name: "foreign_keys", value: "onion" }, true],
		[{ name: "foreign_keys", value: "'on'" }, true],
		[{ name: "foreign_keys", value: '"off"' }, true],
		[{ name: "foreign_keys", value: "maybe" }, false],
		[{ name: "foreign_keys", value: "1'x'" }, true],
		[{ name: "foreign_keys", value: "'on'x" }, false],
		[{ name: "foreign_keys", value: "xonx" }, false],
		[{ name: "table_info", value: "users" }, true],
		[{ name: "table_info", value: "my_cf_table" }, true],
		[{ name: "table_info", value: "_CF_kv" }, false],
		[{ name: "table_info" }, false],
		[{ name: "foreign_key_check" }, true],
		[{ name: "foreign_key_check", value: "t" }, true],
		[{ name: "foreign_key_check", value: "_cf_kv" }, false],
		[{ name: "optimize" }, true],
		[{ name: "optimize", value: "0x10002" }, true],
		[{ name: "optimize", value: "+0x10" }, true],
		[{ name: "optimize", value: "-0x10" }, true],
		[{ name: "optimize", value: "10x5" }, false],
		[{ name: "optimize", value: "0x10zz" }, false],
		[{ name: "optimize", value: "+12" }, true],
		[{ name: "optimize", value: "2147483647" }, true],
		[{ name: "optimize", value: "2147483648" }, false],
		[{ name: "optimize", value: "-2147483648" }, true],
		[{ name: "optimize", value: "-2147483649" }, false],
		[{ name: "optimize", value: "abc" }, false],
		[{ name: "quick_check" }, true],
		[{ name: "quick_check", value: "100" }, true],
		[{ name: "quick_check", value: "t" }, true],
		[{ name: "quick_check", value: "_cf_1" }, false],
		[{ name: "quick_check", value: "_cf_x" }, false],
		[{ name: "data_version", value: "1" }, false],
		[{ name: "optimize", value: "1.5" }, false],
		[{ name: "optimize", value: "1e3" }, false],
	])("%j: %s", (pragma, allowed) => {
		expect(isD1AllowedPragma(pragma)).toBe(allowed);
	});
});

// checkD1Statement itself, not through lint or the replay: they remember verdicts per statement.
describe("checkD1Statement()", () => {
	const terms = (n: number) => Array.from({ length: n }, (_, i) => `${i}`).join(", ");
	const names = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(", ");
	const selects = (n: number) =>
		Array.from({ length: n }, (_, i) => `SELECT ${i}`).join(" UNION ALL ");
	const ors = (n: number) => Array.from({ length: n }, (_, i) => `a = ${i}`).join(" OR ");
	const NA = D1_NOT_AUTHORIZED;
	const COLUMNS = "too many columns in result set";
	const DEPTH = "Expression tree is too large (maximum depth 100)";
	const COMPOUND = "too many terms in compound SELECT";

	// [sql, rule, message, token text]; no rule: D1 prepares it.
	const rows: [string, D1Rule?, string?, string?][] = [
		// PRAGMA: name, [schema.], `=` or `(`, a signed value.
		["PRAGMA", "pragma", NA, "PRAGMA"],
		["PRAGMA foreign_keys(ON)", undefined],
		["PRAGMA main.table_info(users)", undefined],
		["PRAGMA temp.table_info(users)", "pragma", NA, "table_info"],
		["PRAGMA optimize = -2147483648", undefined],
		["PRAGMA optimize = 2147483648", "pragma", NA, "optimize"],
		["PRAGMA optimize = +5", undefined],
		["PRAGMA table_info()", "pragma", NA, "table_info"],
		["PRAGMA foreign_key_check()", undefined],
		["EXPLAIN PRAGMA journal_mode", "pragma", NA, "journal_mode"],
		["EXPLAIN QUERY PLAN PRAGMA journal_mode", "pragma", NA, "journal_mode"],
		["EXPLAIN QUERY PLAN SELECT 1", undefined],
		["EXPLAIN QUERY PLAN BEGIN", "transaction", D1_TRANSACTION_MESSAGE, "BEGIN"],
		// Transactions and attached databases.
		["SAVEPOINT a", "transaction", D1_TRANSACTION_MESSAGE, "SAVEPOINT"],
		["RELEASE a", "transaction", D1_TRANSACTION_MESSAGE, "RELEASE"],
		["DETACH DATABASE x", "attach", NA, "DETACH"],
		// CREATE: TEMP, temp., virtual tables, column count.
		["CREATE TEMP TABLE x (a)", "temp", NA, "TEMP"],
		["CREATE TEMPORARY VIEW v AS SELECT 1", "temp", NA, "TEMPORARY"],
		["CREATE UNIQUE INDEX temp.i ON t (a)", "temp", NA, "temp"],
		["CREATE TABLE IF NOT EXISTS temp.t (a)", "temp", NA],
		["CREATE VIRTUAL TABLE d USING fts4(body)", "virtual-table", NA, "fts4"],
		["CREATE VIRTUAL TABLE IF NOT EXISTS main.d USING FTS5(body)", undefined],
		["CREATE VIRTUAL TABLE d", "virtual-table", NA, "TABLE"],
		[`CREATE TABLE IF NOT EXISTS w (${names(101)})`, "columns", "too many columns on w", "w"],
		[`CREATE TABLE w (${names(100)})`, undefined],
		["CREATE TABLE w AS SELECT 1 AS a", undefined],
		// Other schemas: only temp. is refused (an unknown one fails as SQLite fails it).
		["INSERT INTO temp.t VALUES (1)", "temp", NA, "t"],
		["SELECT * FROM TEMP.t", "temp", NA, "t"],
		["DROP TABLE IF EXISTS temp.t", "temp", NA, "t"],
		["SELECT * FROM aux.t", undefined],
		// Reserved names: tables, views, indexes, triggers; never columns.
		["CREATE TABLE _cf_x (a)", "reserved-name", NA, "_cf_x"],
		["ALTER TABLE t RENAME TO _CF_t", "reserved-name", NA, "_CF_t"],
		["SELECT a FROM _cf_kv", "reserved-name", NA, "_cf_kv"],
		["SELECT _cf_col FROM t", undefined],
		// Functions: a call, not a name.
		[
			"SELECT sqlite_version()",
			"function",
			"not authorized to use function: sqlite_version",
			"sqlite_version",
		],
		[
			"SELECT SQLITE_VERSION ()",
			"function",
			"not authorized to use function: SQLITE_VERSION",
			"SQLITE_VERSION",
		],
		["SELECT if(1, 2, 3)", "function", "not authorized to use function: if", "if"],
		// workerd's SQLite has no soundex (no SQLITE_SOUNDEX): SQLite's own "no such function".
		["SELECT soundex('x')", "function", "no such function: soundex", "soundex"],
		["CREATE TABLE soundex (a)", undefined],
		["SELECT median FROM t", undefined],
		["CREATE TABLE power (a)", undefined],
		["INSERT INTO main.power (a) VALUES (1)", undefined],
		// Compound SELECT: more than 5 terms at one level.
		[selects(6), "compound-select", COMPOUND, "UNION"],
		[selects(5), undefined],
		[
			"SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT (SELECT 4 UNION SELECT 5) UNION SELECT 6",
			undefined,
		],
		[
			"SELECT (SELECT 1 UNION SELECT 2 UNION SELECT 3) UNION SELECT 4 UNION SELECT 5 UNION SELECT 6 UNION SELECT 7",
			undefined,
		],
		[
			"CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1 UNION SELECT 2 UNION SELECT 3; SELECT 4 UNION SELECT 5 UNION SELECT 6; END",
			undefined,
		],
		// Expression depth, estimated per level and precedence run.
		[`DELETE FROM t WHERE ${ors(100)}`, "expression-depth", DEPTH, "="],
		[`DELETE FROM t WHERE ${ors(100).toLowerCase()}`, "expression-depth", DEPTH, "="],
		[`DELETE FROM t WHERE ${ors(99)}`, undefined],
		[`SELECT (${ors(60)}) AND (${ors(60)}) FROM t`, undefined],
		[`SELECT ${ors(60)}, ${ors(60)} FROM t`, undefined],
		[`SELECT CASE WHEN ${ors(60)} THEN 1 WHEN ${ors(60)} THEN 2 END FROM t`, undefined],
		// Result columns: more than 100 at the top level of one SELECT.
		[`SELECT ${terms(101)}`, "columns", COLUMNS, "SELECT"],
		[`SELECT ${terms(100)}`, undefined],
		[`SELECT ${terms(60)}`, undefined],
		[`CREATE TABLE t AS SELECT ${terms(101)}`, "columns", COLUMNS, "SELECT"],
		[`CREATE VIEW v AS SELECT ${terms(101)}`, undefined],
		[`CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT ${terms(101)}; END`, undefined],
		[`SELECT ${terms(99)}, max(1, 2, 3)`, undefined],
		[`SELECT max(a), ${terms(100)}`, "columns", COLUMNS, "SELECT"],
		[`SELECT x FROM (SELECT ${terms(101)})`, "columns", COLUMNS, "SELECT"],
		[`SELECT ${terms(60)} FROM t GROUP BY ${terms(50)}`, undefined],
	];
	const short = (sql: string) => (sql.length > 90 ? `${sql.slice(0, 87)}...` : sql);
	it.each(
		rows.map(([sql, rule, ...rest]) => [short(sql), rule ?? "accepted", sql, ...rest] as const),
	)("%s: %s", (_title, _verdict, sql, message, token) => {
		const rule = _verdict === "accepted" ? undefined : _verdict;
		const [statement] = splitStatements(sql);
		if (statement === undefined) throw new Error("no statement");
		const refusal = checkD1Statement(statement);
		if (rule === undefined) {
			expect(refusal).toBeUndefined();
			return;
		}
		expect({ rule: refusal?.rule, message: refusal?.message }).toEqual({ rule, message });
		if (token !== undefined) expect(refusal?.token?.text).toBe(token);
	});
});

describe("countColumnDefinitions()", () => {
	it.each([
		[
			"CREATE TABLE t (a INTEGER, b TEXT DEFAULT (1), CONSTRAINT pk PRIMARY KEY (a), UNIQUE (b), CHECK (a > 0), FOREIGN KEY (b) REFERENCES u (x))",
			2,
		],
		["CREATE TABLE t (a DECIMAL(10, 2), b)", 2],
		['CREATE TABLE t ("unique" TEXT, "check" INT, [primary])', 3],
		["CREATE TABLE t (a, b) WITHOUT ROWID, STRICT", 2],
		["CREATE TABLE t (a DEFAULT (coalesce(1, 2)), b)", 2],
	])("%s has %i columns", (sql, count) => {
		const tokens = splitStatements(sql)[0]?.tokens ?? [];
		expect(
			countColumnDefinitions(
				tokens,
				tokens.findIndex((t) => t.text === "("),
			),
		).toBe(count);
	});
});

describe("parseRowChange() of UPDATE", () => {
	const change = (sql: string) => parseRowChange(splitStatements(sql)[0]?.tokens ?? []);
	it.each([
		["UPDATE t SET x = coalesce(y, 1), (a, b) = (1, 2)", ["x", "a", "b"]],
		["UPDATE t SET a = (SELECT max(x) FROM u), b = 2", ["a", "b"]],
		["UPDATE t SET a = u.x FROM u WHERE u.id = t.id", ["a"]],
		["UPDATE t SET a = 1 RETURNING b = 2", ["a"]],
		["UPDATE t SET a = 1 ORDER BY b = 2 LIMIT 1", ["a"]],
		["UPDATE t SET a = coalesce((SELECT x FROM u WHERE k = 1), 0)", ["a"]],
		["UPDATE t SET a = b", ["a"]],
		["UPDATE t", undefined],
	])("%s sets %j", (sql, columns) => {
		expect(change(sql)).toEqual({ table: "t", op: "UPDATE", columns });
	});

	it.each(["UPDATE", "DROP VIEW v", "DROP INDEX IF EXISTS i"])("%s is no row change", (sql) => {
		expect(change(sql)).toBeUndefined();
	});
});

describe("parseTriggerProgram()", () => {
	const program = (sql: string, table = "t") => parseTriggerProgram({ name: "g", table, sql });
	it.each([
		[
			"CREATE TRIGGER g AFTER UPDATE OF a, B ON T BEGIN INSERT INTO u VALUES (1); SELECT 1; DROP TABLE x; DELETE FROM v; END",
			"UPDATE",
			["a", "b"],
			[
				{ table: "u", op: "INSERT" },
				{ table: "v", op: "DELETE" },
			],
		],
		[
			"CREATE TRIGGER g AFTER DELETE ON t BEGIN INSERT INTO u (a) VALUES (1); END",
			"DELETE",
			undefined,
			[{ table: "u", op: "INSERT" }],
		],
		[
			"CREATE TRIGGER g BEFORE UPDATE ON t BEGIN UPDATE u SET a = 1; END",
			"UPDATE",
			undefined,
			[{ table: "u", op: "UPDATE", columns: ["a"] }],
		],
		["CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; END", "INSERT", undefined, []],
	])("%s", (sql, op, of, steps) => {
		expect(program(sql, "T")).toEqual({ name: "g", table: "t", op, of, steps });
	});

	it.each(["", "CREATE TABLE t (a)", "CREATE TRIGGER g AFTER INSERT ON t"])(
		"%j is no trigger program",
		(sql) => {
			expect(program(sql)).toBeUndefined();
		},
	);
});

describe("triggerDepth() over triggers and foreign-key actions", () => {
	const trigger = (name: string, table: string, sql: string) => ({ name, table, sql });
	const key = (
		child: string,
		parent: string,
		from: string,
		to: string | null,
		onDelete: string,
		onUpdate: string,
		id = 0,
	) => ({ child, id, parent, from, to, onDelete, onUpdate });
	const programs = planTriggerPrograms({
		triggers: [
			trigger(
				"x_del",
				"x",
				"CREATE TRIGGER x_del AFTER DELETE ON x BEGIN INSERT INTO y (a) VALUES (1); END",
			),
			trigger(
				"y_ins",
				"y",
				"CREATE TRIGGER y_ins AFTER INSERT ON y BEGIN INSERT INTO z (a) VALUES (1); END",
			),
			trigger(
				"w_upd",
				"w",
				"CREATE TRIGGER w_upd AFTER UPDATE OF p, q ON w BEGIN DELETE FROM z; END",
			),
			trigger("r_upd", "r", "CREATE TRIGGER r_upd AFTER UPDATE ON r BEGIN DELETE FROM z; END"),
			trigger(
				"s_del",
				"s",
				"CREATE TRIGGER s_del AFTER DELETE ON s BEGIN INSERT INTO y (a) VALUES (1); END",
			),
			trigger("n_del", "n", "CREATE TRIGGER n_del AFTER DELETE ON n BEGIN SELECT 1; END"),
			trigger("broken", "x", "not a trigger"),
		],
		foreignKeys: [
			key("x", "w", "w_id", null, "CASCADE", "CASCADE"),
			key("r", "rp", "a", "k1", "RESTRICT", "SET NULL"),
			key("r", "rp", "b", "k2", "RESTRICT", "SET NULL"),
			key("s", "z", "zz", "id", "SET NULL", "NO ACTION"),
			key("na", "nap", "p", "id", "NO ACTION", "NO ACTION"),
		],
	});
	const chain = planTriggerPrograms({
		triggers: Array.from({ length: 15 }, (_, i) =>
			trigger(
				`c${i}`,
				`k${i}`,
				`CREATE TRIGGER c${i} AFTER INSERT ON k${i} BEGIN INSERT INTO k${i + 1} (a) VALUES (1); END`,
			),
		),
		foreignKeys: [],
	});

	it.each([
		// x_del (1) → INSERT y → y_ins (2); z has no INSERT trigger.
		[{ table: "x", op: "DELETE" }, 2],
		// DROP TABLE: the table's own triggers do not fire.
		[{ table: "x", op: "DELETE", withoutTriggers: true }, 0],
		[{ table: "y", op: "DELETE" }, 0],
		// w_upd (1) → DELETE z → s's SET NULL (2) → UPDATE s; and x's ON UPDATE CASCADE (1).
		[{ table: "w", op: "UPDATE", columns: ["p"] }, 2],
		// x references w's primary key (to null): any UPDATE of w may change it.
		[{ table: "w", op: "UPDATE", columns: ["other"] }, 1],
		[{ table: "w", op: "INSERT" }, 0],
		// r's SET NULL (1) → UPDATE r → r_upd (2) → DELETE z → s's SET NULL (3).
		[{ table: "rp", op: "UPDATE", columns: ["k1"] }, 3],
		[{ table: "rp", op: "UPDATE", columns: ["other"] }, 0],
		// RESTRICT is a program with no steps.
		[{ table: "rp", op: "DELETE" }, 1],
		// s's SET NULL on DELETE is an UPDATE of s, which s_del does not watch.
		[{ table: "z", op: "DELETE" }, 1],
		[{ table: "n", op: "DELETE" }, 1],
		[{ table: "nap", op: "DELETE" }, 0],
		[{ table: "nap", op: "UPDATE" }, 0],
	] as const)("%j nests %i programs", (change, depth) => {
		expect(triggerDepth(programs, change)).toBe(depth);
	});

	it("stops counting one past the limit (11), however deep the chain goes", () => {
		expect(triggerDepth(chain, { table: "k0", op: "INSERT" })).toBe(11);
		expect(triggerDepth(chain, { table: "k5", op: "INSERT" })).toBe(10);
	});
});

describe("exceedsD1RequestLength()", () => {
	it.each([
		["x".repeat(100_000), false],
		["x".repeat(100_001), true],
		["é".repeat(50_000), false],
		["é".repeat(50_001), true],
	])("%#: %s", (sql, over) => {
		expect(exceedsD1RequestLength(sql)).toBe(over);
	});
});
