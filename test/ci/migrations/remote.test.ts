import { describe, expect, it } from "vitest";
import { D1RateLimitError } from "../../../ci/cloudflare/d1-client.ts";
import { D1ApiError } from "../../../ci/errors.ts";
import { SqliteExecutor } from "../../../ci/migrations/executor.ts";
import { LOCK_TABLE, RUNS_TABLE } from "../../../ci/migrations/ledger.ts";
import {
	DatabaseNotEmptyError,
	LockHeldError,
	ledgerHasUniqueName,
	readRemoteState,
	readStateIfMigrated,
	readWithRetry,
	withMigrationLock,
} from "../../../ci/migrations/remote.ts";

const table = (sql: string, name = "d1_migrations") => ({
	type: "table",
	name,
	tbl_name: name,
	sql,
});

describe("ledgerHasUniqueName()", () => {
	it.each([
		[
			"wrangler's own table",
			"CREATE TABLE d1_migrations(\n id INTEGER PRIMARY KEY AUTOINCREMENT,\n name TEXT UNIQUE,\n applied_at TIMESTAMP)",
			true,
		],
		[
			"a table constraint",
			"CREATE TABLE d1_migrations (id INTEGER, name TEXT, UNIQUE (name))",
			true,
		],
		[
			"name without UNIQUE",
			"CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)",
			false,
		],
		[
			"UNIQUE on another column",
			"CREATE TABLE d1_migrations (id INTEGER UNIQUE, name TEXT)",
			false,
		],
	])("%s → %s", (_label, sql, expected) => {
		expect(ledgerHasUniqueName([table(sql)], "d1_migrations")).toBe(expected);
	});

	it("accepts a separate unique index on name", () => {
		const rows = [
			table("CREATE TABLE d1_migrations (id INTEGER, name TEXT)"),
			{
				type: "index",
				name: "u",
				tbl_name: "d1_migrations",
				sql: "CREATE UNIQUE INDEX u ON d1_migrations (name)",
			},
		];
		expect(ledgerHasUniqueName(rows, "d1_migrations")).toBe(true);
	});
});

describe("readWithRetry()", () => {
	const counting = (error: unknown) => {
		let calls = 0;
		const read = async () => {
			calls++;
			throw error;
		};
		return { read, calls: () => calls };
	};

	it.each([
		["a TypeError", new TypeError("x is not a function"), 1],
		["a definite D1 refusal", new D1ApiError("no such table", { status: 400 }), 1],
		["no answer", new D1ApiError("timeout"), 3],
		["a 503", new D1ApiError("x", { status: 503 }), 3],
	])("%s is tried %i time(s)", async (_label, error, expected) => {
		const { read, calls } = counting(error);
		await expect(readWithRetry(read, { attempts: 3, baseDelayMs: 1 })).rejects.toBe(error);
		expect(calls()).toBe(expected);
	});

	it("gives up at once on a Retry-After longer than it waits", async () => {
		const { read, calls } = counting(new D1RateLimitError("limited", { retryAfterMs: 5 * 60_000 }));
		await expect(readWithRetry(read, { attempts: 3, baseDelayMs: 1 })).rejects.toThrow("limited");
		expect(calls()).toBe(1);
	});

	it("waits out a short Retry-After, then succeeds", async () => {
		let calls = 0;
		const started = Date.now();
		const value = await readWithRetry(
			async () => {
				if (calls++ === 0) throw new D1RateLimitError("limited", { retryAfterMs: 50 });
				return "ok";
			},
			{ attempts: 3, baseDelayMs: 1 },
		);
		expect(value).toBe("ok");
		expect(Date.now() - started).toBeGreaterThanOrEqual(45);
	});
});

describe("withMigrationLock()", () => {
	const options = (runId: string) => ({
		migrationsTable: "d1_migrations",
		runId,
		owner: runId,
		ttlSeconds: 60,
		timeoutMs: 0,
	});
	const lockRows = (db: SqliteExecutor) => db.db.prepare(`SELECT run_id FROM ${LOCK_TABLE}`).all();

	it("releases the lock when the body throws, and rethrows", async () => {
		const db = new SqliteExecutor();
		const boom = new Error("boom");
		await expect(
			withMigrationLock(db, options("a"), async () => {
				expect(lockRows(db)).toEqual([{ run_id: "a" }]);
				throw boom;
			}),
		).rejects.toBe(boom);
		expect(lockRows(db)).toEqual([]);
	});

	it("sends the body's final statements in the release request", async () => {
		const db = new SqliteExecutor();
		const { value, release } = await withMigrationLock(db, options("a"), async (lock) => {
			lock.finalStatements = [
				`INSERT INTO ${RUNS_TABLE} (run_id, owner, status) VALUES ('a', 'a', 'succeeded');`,
			];
			return 42;
		});
		expect(value).toBe(42);
		expect(release).toEqual({ released: true });
		expect(db.db.prepare(`SELECT status FROM ${RUNS_TABLE}`).pluck().all()).toEqual(["succeeded"]);
		expect(lockRows(db)).toEqual([]);
	});

	it.each([
		["a table", "CREATE TABLE t (id INTEGER)"],
		["a view", "CREATE VIEW v AS SELECT 1 AS x"],
		["wrangler's ledger alone, empty", "CREATE TABLE d1_migrations (id INTEGER, name TEXT UNIQUE)"],
	])(
		"with requireEmpty, claims nothing and writes nothing on a database with %s",
		async (_label, sql) => {
			const db = new SqliteExecutor();
			db.db.exec(sql);
			const before = db.db.prepare("SELECT type, name, sql FROM sqlite_master").all();
			const error = await withMigrationLock(
				db,
				{ ...options("a"), requireEmpty: true },
				async () => 1,
			).catch((e) => e);
			expect(error).toBeInstanceOf(DatabaseNotEmptyError);
			expect(db.db.prepare("SELECT type, name, sql FROM sqlite_master").all()).toEqual(before);
		},
	);

	it("with requireEmpty, claims an empty database and reads its state in the same request", async () => {
		const db = new SqliteExecutor();
		await withMigrationLock(db, { ...options("a"), requireEmpty: true }, async (lock) => {
			expect(lockRows(db)).toEqual([{ run_id: "a" }]);
			expect(lock.state?.ledger.applied).toEqual([]);
			expect(lock.state?.ledgerUnique).toBe(true);
			expect(db.requestCount).toBe(1);
		});
	});

	it("throws LockHeldError naming the holder, and leaves that lock alone", async () => {
		const db = new SqliteExecutor();
		await withMigrationLock(db, options("a"), async () => {
			const error = await withMigrationLock(db, options("b"), async () => 1).catch((e) => e);
			expect(error).toBeInstanceOf(LockHeldError);
			expect((error as LockHeldError).holder?.runId).toBe("a");
			expect(lockRows(db)).toEqual([{ run_id: "a" }]);
		});
	});
});

describe("readStateIfMigrated()", () => {
	it("names wrangler's ledger as missing on a never-migrated database, in one request", async () => {
		const db = new SqliteExecutor();
		expect(await readStateIfMigrated(db, "d1_migrations")).toEqual({ missing: "d1_migrations" });
		expect(db.requestCount).toBe(1);
	});

	it("names the audit table when only wrangler's ledger exists; readRemoteState reads it", async () => {
		const db = new SqliteExecutor();
		db.db.exec(
			"CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TEXT); INSERT INTO d1_migrations (name) VALUES ('0001_a.sql');",
		);
		expect(await readStateIfMigrated(db, "d1_migrations")).toEqual({
			missing: "workers_pipeline_migrations",
		});
		const state = await readRemoteState(db, "d1_migrations");
		expect(state.ledger.applied.map((r) => r.name)).toEqual(["0001_a.sql"]);
	});
});
