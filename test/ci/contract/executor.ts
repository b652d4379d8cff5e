// One contract for every SqlExecutor (D1 over the loopback REST API, better-sqlite3 in memory):
// the request semantics migrate relies on, and the lock/ledger flows built on them. A backend
// that cannot have a behaviour skips it by name, with the reason printed.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isAmbiguous } from "../../../ci/cloudflare/d1-client.ts";
import { D1ApiError } from "../../../ci/errors.ts";
import { applyPlan } from "../../../ci/migrations/apply.ts";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import type { SqlExecutor } from "../../../ci/migrations/executor.ts";
import { fenceSql, guardSql, LOCK_TABLE, setupSql } from "../../../ci/migrations/ledger.ts";
import { planMigrations } from "../../../ci/migrations/plan.ts";
import { readRemoteState, tryClaimLock } from "../../../ci/migrations/remote.ts";

export interface ExecutorFixture {
	executor: SqlExecutor;
	close(): Promise<void> | void;
}

export interface ContractOptions {
	/** Contract cases this backend cannot have: case name → why. */
	skip?: Record<string, string>;
}

export const CONTRACT_CASES = [
	"returns the rows of a SELECT",
	"answers one result per statement, in order",
	"runs a multi-statement request atomically",
	"refuses a bad statement with a definite D1 error",
	"binds parameters of the last statement",
	"enforces foreign keys",
	"refuses an explicit BEGIN",
	"refuses a statement over 100 KB",
	"reads an empty state from a fresh database",
	"claims a free lock without a takeover",
	"takes over an expired lock, naming the stale holder",
	"names the live holder when the lock is taken",
	"fences off a run that lost its lock: nothing of the request is written",
	"guards against applying a migration twice, without wrangler's UNIQUE",
	"applies a plan: each migration with its ledger rows",
] as const;
export type ContractCase = (typeof CONTRACT_CASES)[number];

const TABLE = "d1_migrations";
const lock = (runId: string, ttlSeconds = 60) => ({
	migrationsTable: TABLE,
	runId,
	owner: `owner of ${runId}`,
	ttlSeconds,
});
const rows = async (db: SqlExecutor, sql: string) => (await db.query(sql))[0]?.results ?? [];

export function executorContract(
	name: string,
	make: () => Promise<ExecutorFixture> | ExecutorFixture,
	options: ContractOptions = {},
): void {
	describe(`SqlExecutor contract: ${name}`, () => {
		let fixture: ExecutorFixture;
		let db: SqlExecutor;
		beforeEach(async () => {
			fixture = await make();
			db = fixture.executor;
		});
		afterEach(async () => {
			await fixture.close();
		});
		const test = (title: ContractCase, fn: () => Promise<void>) => {
			const reason = options.skip?.[title];
			if (reason !== undefined) {
				it.skip(`${title} (skipped: ${reason})`, fn);
				console.info(`[contract ${name}] skipped "${title}": ${reason}`);
				return;
			}
			it(title, fn);
		};

		test("returns the rows of a SELECT", async () => {
			const [result] = await db.query("SELECT 1 AS one, 'a' AS letter;");
			expect(result?.results).toEqual([{ one: 1, letter: "a" }]);
		});

		test("answers one result per statement, in order", async () => {
			const results = await db.query(
				"CREATE TABLE t (v INTEGER);\nINSERT INTO t VALUES (1), (2);\nSELECT count(*) AS n FROM t;\nSELECT 'x' AS last;",
				{ write: true },
			);
			expect(results).toHaveLength(4);
			expect(results[2]?.results).toEqual([{ n: 2 }]);
			expect(results[3]?.results).toEqual([{ last: "x" }]);
		});

		test("runs a multi-statement request atomically", async () => {
			await db.query("CREATE TABLE t (v INTEGER NOT NULL);", { write: true });
			await expect(
				db.query("INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (NULL);", { write: true }),
			).rejects.toThrow(/NOT NULL constraint failed/);
			expect(await rows(db, "SELECT count(*) AS n FROM t;")).toEqual([{ n: 0 }]);
		});

		test("refuses a bad statement with a definite D1 error", async () => {
			const error = await db.query("SELECT * FROM missing_table;").catch((e: unknown) => e);
			expect(error).toBeInstanceOf(D1ApiError);
			expect((error as Error).message).toMatch(/no such table: missing_table/);
			expect(isAmbiguous(error)).toBe(false);
		});

		test("binds parameters of the last statement", async () => {
			const [result] = await db.query("SELECT ? AS a, ? AS b;", { params: ["x", 2] });
			expect(result?.results).toEqual([{ a: "x", b: 2 }]);
		});

		test("enforces foreign keys", async () => {
			await db.query(
				"CREATE TABLE parent (id INTEGER PRIMARY KEY);\nCREATE TABLE child (parent_id INTEGER REFERENCES parent(id));",
				{ write: true },
			);
			await expect(db.query("INSERT INTO child VALUES (42);", { write: true })).rejects.toThrow(
				/FOREIGN KEY constraint failed/,
			);
		});

		test("refuses an explicit BEGIN", async () => {
			await expect(
				db.query("BEGIN TRANSACTION;\nSELECT 1;\nCOMMIT;", { write: true }),
			).rejects.toBeInstanceOf(D1ApiError);
		});

		test("refuses a statement over 100 KB", async () => {
			const big = `SELECT '${"x".repeat(101 * 1024)}' AS v;`;
			await expect(db.query(big)).rejects.toThrow(/SQLITE_TOOBIG|too long/i);
		});

		test("reads an empty state from a fresh database", async () => {
			const state = await readRemoteState(db, TABLE);
			expect(state.ledger.applied).toEqual([]);
			expect(state.ledger.audit.size).toBe(0);
			expect(state.schema.objects).toEqual([]);
		});

		test("claims a free lock without a takeover", async () => {
			const outcome = await tryClaimLock(db, lock("run-a"));
			expect(outcome).toMatchObject({ acquired: true, tookOverFrom: undefined });
			expect(outcome.acquired && outcome.state?.ledger.applied).toEqual([]);
			// A second claim by the same run reads it as its own lock, still no takeover.
			expect(await tryClaimLock(db, lock("run-a"))).toMatchObject({
				acquired: true,
				tookOverFrom: undefined,
			});
		});

		test("takes over an expired lock, naming the stale holder", async () => {
			await tryClaimLock(db, lock("run-old"));
			await db.query(`UPDATE ${LOCK_TABLE} SET expires_at = 1;`, { write: true });
			const outcome = await tryClaimLock(db, lock("run-new"));
			expect(outcome.acquired).toBe(true);
			expect(outcome.acquired && outcome.tookOverFrom).toMatchObject({
				runId: "run-old",
				owner: "owner of run-old",
				expiresAt: 1,
			});
		});

		test("names the live holder when the lock is taken", async () => {
			await tryClaimLock(db, lock("run-a"));
			const outcome = await tryClaimLock(db, lock("run-b"));
			expect(outcome).toMatchObject({
				acquired: false,
				holder: { runId: "run-a", owner: "owner of run-a" },
			});
		});

		test("fences off a run that lost its lock: nothing of the request is written", async () => {
			await tryClaimLock(db, lock("run-a"));
			await db.query("CREATE TABLE t (v INTEGER);", { write: true });
			await expect(
				db.query(`${fenceSql("run-b", 60)}\nINSERT INTO t VALUES (1);`, { write: true }),
			).rejects.toThrow(/lock_lost/);
			expect(await rows(db, "SELECT count(*) AS n FROM t;")).toEqual([{ n: 0 }]);
		});

		test("guards against applying a migration twice, without wrangler's UNIQUE", async () => {
			// A ledger someone created without UNIQUE on name: only the guard stops a second row.
			await db.query(
				`CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, applied_at TEXT);\nINSERT INTO ${TABLE} (name) VALUES ('0001_a.sql');`,
				{ write: true },
			);
			await db.query(setupSql(TABLE), { write: true });
			await expect(
				db.query(
					`${guardSql(TABLE, "0001_a.sql")}\nINSERT INTO ${TABLE} (name) VALUES ('0001_a.sql');`,
					{ write: true },
				),
			).rejects.toThrow(/already_applied/);
			expect(await rows(db, `SELECT count(*) AS n FROM ${TABLE};`)).toEqual([{ n: 1 }]);
			const state = await readRemoteState(db, TABLE);
			expect(state.ledgerUnique).toBe(false);
		});

		test("applies a plan: each migration with its ledger rows", async () => {
			const catalog = parseCatalog({
				dir: "migrations",
				pattern: "migrations/*.sql",
				retired: [],
				files: [
					{ name: "0001_a.sql", bytes: Buffer.from("CREATE TABLE a (id INTEGER PRIMARY KEY);\n") },
					{ name: "0002_b.sql", bytes: Buffer.from("INSERT INTO a (id) VALUES (1), (2);\n") },
				],
			});
			const claimed = await tryClaimLock(db, lock("run-a"));
			if (!claimed.acquired || !claimed.state) throw new Error("lock not claimed");
			const plan = planMigrations(catalog, claimed.state.ledger);
			const outcome = await applyPlan(plan, db, {
				run: {
					migrationsTable: TABLE,
					runId: "run-a",
					ttlSeconds: 60,
					owner: "owner of run-a",
					gitSha: null,
					bookmark: "bookmark-0",
				},
			});
			expect(outcome.failure).toBeUndefined();
			expect(outcome.applied.map((a) => a.name)).toEqual(["0001_a.sql", "0002_b.sql"]);
			expect(outcome.stateAfter?.ledger.applied.map((r) => r.name)).toEqual([
				"0001_a.sql",
				"0002_b.sql",
			]);
			expect(await rows(db, "SELECT count(*) AS n FROM a;")).toEqual([{ n: 2 }]);
			const audit = await rows(
				db,
				"SELECT name, run_id FROM workers_pipeline_migrations ORDER BY name;",
			);
			expect(audit).toEqual([
				{ name: "0001_a.sql", run_id: "run-a" },
				{ name: "0002_b.sql", run_id: "run-a" },
			]);
		});
	});
}
