import { describe, expect, it } from "vitest";
import type { Migration } from "../../../ci/migrations/catalog.ts";
import {
	checkD1Statement,
	isD1AllowedPragma,
	mayBreakD1Rules,
	mayBreakD1RulesOnce,
	parseRowChange,
	planTriggerPrograms,
	triggerDepth,
} from "../../../ci/migrations/d1-rules.ts";
import { lintMigration } from "../../../ci/migrations/lint.ts";
import { replayMigrations } from "../../../ci/migrations/replay.ts";
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
	])("%j: %s", (pragma, allowed) => {
		expect(isD1AllowedPragma(pragma)).toBe(allowed);
	});
});
