import { describe, expect, it } from "vitest";
import { D1DatabaseState } from "./d1-database.ts";

const columns = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(", ");

function withState<T>(run: (state: D1DatabaseState) => T): T {
	const state = new D1DatabaseState({ uuid: "case", name: "case" });
	try {
		return run(state);
	} finally {
		state.close();
	}
}

// workerd's D1 answered "too many columns on sqlite_altertab_Wide: SQLITE_ERROR" here: SQLite
// alter.c sqlite3AlterBeginAddColumn() names the working copy after the stored table.
describe("D1DatabaseState ALTER TABLE ADD COLUMN past 100 columns", () => {
	it("names the table as stored, not as the ALTER spells it", () => {
		withState((state) => {
			state.execute([{ sql: `CREATE TABLE Wide (${columns(100)});` }]);
			expect(() => state.execute([{ sql: "ALTER TABLE wide ADD COLUMN extra;" }])).toThrow(
				"too many columns on sqlite_altertab_Wide: SQLITE_ERROR",
			);
		});
	});
});

// workerd builds SQLite without SQLITE_DQS (build/BUILD.sqlite3): D1 reads a double-quoted name
// that resolves to nothing as a string, in a trigger only when it fires (trigger.c
// codeRowTrigger() resolves the body then). Each expectation is what workerd's D1 answered.
describe("D1DatabaseState double-quoted strings", () => {
	const tables = "CREATE TABLE t (a TEXT); CREATE TABLE log (m TEXT);";
	const rows = (state: D1DatabaseState, sql: string) => state.execute([{ sql }]).at(-1)?.rows;
	const triggerSql = (state: D1DatabaseState) =>
		rows(state, "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name");

	it("reads a trigger body's name as a string when an INSERT fires it, keeping the trigger as written", () => {
		withState((state) => {
			const trigger = `CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ("hello"); END`;
			state.execute([{ sql: `${tables} ${trigger};` }]);
			state.execute([{ sql: "INSERT INTO t VALUES ('x'); INSERT INTO t VALUES ('y');" }]);
			expect(rows(state, "SELECT m FROM log")).toEqual([["hello"], ["hello"]]);
			expect(triggerSql(state)).toEqual([["tr", trigger]]);
		});
	});

	it.each([
		[
			"a name in WHEN",
			`${tables} CREATE TRIGGER tr AFTER INSERT ON t WHEN new.a = "x" BEGIN INSERT INTO log VALUES (new.a); END; INSERT INTO t VALUES ('x');`,
			"SELECT m FROM log",
			[["x"]],
		],
		[
			"a name that is a column by the time it fires",
			`${tables} CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE log SET m = "zz"; END; INSERT INTO log VALUES ('orig'); ALTER TABLE log ADD COLUMN zz TEXT DEFAULT 'col'; INSERT INTO t VALUES ('x');`,
			"SELECT m FROM log",
			[["col"]],
		],
		[
			"three triggers, the middle one with a name, fired twice (newest first)",
			`${tables} CREATE TRIGGER tr1 AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('one'); END; CREATE TRIGGER tr2 AFTER INSERT ON t BEGIN INSERT INTO log VALUES ("two"); END; CREATE TRIGGER tr3 AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('three'); END; INSERT INTO t VALUES ('x'); INSERT INTO t VALUES ('y');`,
			"SELECT group_concat(m) FROM log",
			[["three,two,one,three,two,one"]],
		],
		[
			"300 names in the rows of one INSERT ... VALUES",
			`CREATE TABLE t (a TEXT); INSERT INTO t VALUES ${Array.from({ length: 300 }, (_, i) => `("n${i}")`).join(", ")};`,
			"SELECT count(*), min(a) FROM t",
			[[300, "n0"]],
		],
		[
			"a name that is a column beside one that is not, in one IN list",
			`CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('a'), ('x'), ('y'); DELETE FROM t WHERE a IN ("a", "x");`,
			"SELECT count(*) FROM t",
			[[0]],
		],
		[
			"300 names in one IN list",
			`CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('n250'), ('other'); DELETE FROM t WHERE a IN (${Array.from({ length: 300 }, (_, i) => `"n${i}"`).join(", ")});`,
			"SELECT a FROM t",
			[["other"]],
		],
	])("%s", (_label, sql, read, expected) => {
		withState((state) => {
			state.execute([{ sql }]);
			expect(rows(state, read)).toEqual(expected);
		});
	});

	it("still fails a trigger whose name nothing makes a string, keeping nothing of the request", () => {
		withState((state) => {
			state.execute([
				{
					sql: `${tables} CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new."nope"); END;`,
				},
			]);
			expect(() =>
				state.execute([{ sql: "INSERT INTO log VALUES ('kept?'); INSERT INTO t VALUES ('x');" }]),
			).toThrow("no such column: new.nope: SQLITE_ERROR");
			expect(rows(state, "SELECT count(*) FROM log")).toEqual([[0]]);
		});
	});
});
