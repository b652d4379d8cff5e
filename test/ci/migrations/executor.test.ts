// SqliteExecutor beyond the shared contract (test/ci/contract/): D1's result metadata, request
// counting, the import path and the error it throws.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { D1ApiError } from "../../../ci/errors.ts";
import { SqliteExecutor } from "../../../ci/migrations/executor.ts";

const executor = () => {
	const db = new SqliteExecutor();
	db.db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);");
	return db;
};

describe("SqliteExecutor.query()", () => {
	it.each([
		[
			"a write",
			"INSERT INTO t (v) VALUES ('a'), ('b');",
			[{ results: [], success: true, meta: { changes: 2, last_row_id: 2, rows_written: 2 } }],
		],
		[
			"a read",
			"SELECT v FROM t WHERE v IS NULL;",
			[{ results: [], success: true, meta: { rows_read: 0, changes: 0 } }],
		],
		[
			"a write, then a read of it",
			"INSERT INTO t (v) VALUES ('x');\nSELECT id, v FROM t;",
			[
				{ results: [], success: true, meta: { changes: 1, last_row_id: 1, rows_written: 1 } },
				{ results: [{ id: 1, v: "x" }], success: true, meta: { rows_read: 1, changes: 0 } },
			],
		],
		[
			"empty statements and comments",
			"SELECT 1 AS one;;\n-- done\n",
			[{ results: [{ one: 1 }], success: true, meta: { rows_read: 1, changes: 0 } }],
		],
		["nothing at all", "  -- only a comment\n", []],
	])("%s: one D1-shaped result per statement", async (_, sql, expected) => {
		expect(await executor().query(sql)).toEqual(expected);
	});

	it("binds the parameters to the last statement only", async () => {
		const db = executor();
		const results = await db.query(
			"INSERT INTO t (v) VALUES ('first');\nSELECT ? AS p, count(*) AS n FROM t;",
			{
				params: ["bound"],
			},
		);
		expect(results[1]?.results).toEqual([{ p: "bound", n: 1 }]);
	});

	it("throws a definite D1ApiError (HTTP 400, 7500) with SQLite's message and the cause", async () => {
		const error = await executor()
			.query("INSERT INTO t (v) VALUES ('kept?');\nINSERT INTO missing VALUES (1);")
			.catch((e: unknown) => e);
		expect(error).toBeInstanceOf(D1ApiError);
		expect(error).toMatchObject({
			status: 400,
			d1Code: 7500,
			message: "D1 query failed (HTTP 400) [7500]: no such table: missing",
		});
		expect((error as D1ApiError).cause).toBeInstanceOf(Error);
	});

	it("rolls the whole request back when one statement fails", async () => {
		const db = executor();
		await db.query("INSERT INTO t (v) VALUES ('a'); INSERT INTO nope VALUES (1);").catch(() => {});
		expect(await db.query("SELECT count(*) AS n FROM t;")).toMatchObject([{ results: [{ n: 0 }] }]);
	});

	it("counts requests, not statements, failed ones included", async () => {
		const db = executor();
		expect(db.requestCount).toBe(0);
		await db.query("SELECT 1; SELECT 2;");
		await db.query("SELECT * FROM nope;").catch(() => {});
		expect(db.requestCount).toBe(2);
	});

	it("turns foreign keys on for a database it is given", async () => {
		const raw = new Database(":memory:");
		raw.pragma("foreign_keys = OFF");
		const db = new SqliteExecutor(raw);
		expect(raw.pragma("foreign_keys", { simple: true })).toBe(1);
		db.close();
		expect(raw.open).toBe(false);
	});
});

describe("SqliteExecutor.importSql()", () => {
	it("runs the SQL as one atomic request and gives no bookmark", async () => {
		const db = executor();
		expect(
			await db.importSql("INSERT INTO t (v) VALUES ('a');\nINSERT INTO t (v) VALUES ('b');"),
		).toEqual({});
		expect(db.requestCount).toBe(1);
		await expect(
			db.importSql("INSERT INTO t (v) VALUES ('c');\nINSERT INTO nope VALUES (1);"),
		).rejects.toThrow(D1ApiError);
		expect(await db.query("SELECT v FROM t ORDER BY id;")).toMatchObject([
			{ results: [{ v: "a" }, { v: "b" }] },
		]);
	});
});
