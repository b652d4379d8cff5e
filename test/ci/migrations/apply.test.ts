import { describe, expect, it } from "vitest";
import { D1ApiError } from "../../../ci/errors.ts";
import { applyPlan, migrationRequest } from "../../../ci/migrations/apply.ts";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import { type QueryOptions, SqliteExecutor } from "../../../ci/migrations/executor.ts";
import { planMigrations } from "../../../ci/migrations/plan.ts";
import { tryClaimLock } from "../../../ci/migrations/remote.ts";

const catalog = parseCatalog({
	dir: "migrations",
	pattern: "migrations/*.sql",
	retired: [],
	files: [
		{ name: "0001_t.sql", bytes: Buffer.from("CREATE TABLE t (v TEXT);\n") },
		// Applied twice, this would double its row: a double apply cannot hide.
		{ name: "0002_seed.sql", bytes: Buffer.from("INSERT INTO t VALUES ('once');\n") },
	],
});
const run = {
	migrationsTable: "d1_migrations",
	runId: "run-1",
	ttlSeconds: 60,
	owner: "me",
	gitSha: null,
	bookmark: "b0",
};

/** A SQLite executor whose `n`-th write request fails the way `fault` says. */
class FaultyExecutor extends SqliteExecutor {
	writes = 0;
	calls = 0;
	faults: Record<number, "lost-after-commit" | "type-error" | "refused"> = {};
	override async query(sql: string, options: QueryOptions = {}) {
		this.calls++;
		if (!options.write) return super.query(sql, options);
		const fault = this.faults[++this.writes];
		if (fault === "type-error") throw new TypeError("cannot read properties of undefined");
		if (fault === "refused") throw new D1ApiError("no such table: x", { status: 400 });
		const results = await super.query(sql, options);
		if (fault === "lost-after-commit") throw new D1ApiError("D1 query: no answer from the API");
		return results;
	}
}

async function planned(db: SqliteExecutor) {
	const claim = await tryClaimLock(db, { ...run, owner: "me" });
	if (!claim.acquired || !claim.state) throw new Error("no lock");
	return planMigrations(catalog, claim.state.ledger);
}

describe("applyPlan()", () => {
	it("settles an answer lost after the commit by a ledger read: applied once, never twice", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 2: "lost-after-commit" };
		db.writes = 0;
		const outcome = await applyPlan(plan, db, { run, retryDelayMs: () => 1 });
		expect(outcome.failure).toBeUndefined();
		expect(outcome.rows.find((r) => r.name === "0002_seed.sql")?.note).toMatch(
			/confirmed applied by a ledger read/,
		);
		expect(db.db.prepare("SELECT count(*) FROM t").pluck().get()).toBe(1);
	});

	it("never retries a TypeError: it is a bug, not a lost answer", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "type-error" };
		db.writes = 0;
		const calls = db.calls;
		await expect(applyPlan(plan, db, { run, retryDelayMs: () => 1 })).rejects.toBeInstanceOf(
			TypeError,
		);
		expect(db.calls - calls).toBe(1);
	});

	it("stops at a definite refusal and runs nothing after it", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "refused" };
		db.writes = 0;
		const outcome = await applyPlan(plan, db, { run });
		expect(outcome.failure).toMatchObject({ ambiguous: false, lockLost: false });
		expect(outcome.rows.map((r) => [r.name, r.status])).toEqual([
			["0001_t.sql", "failed"],
			["0002_seed.sql", "not-run"],
		]);
	});

	it("applies no more once a stop is requested", async () => {
		const db = new SqliteExecutor();
		const plan = await planned(db);
		let asked = 0;
		const outcome = await applyPlan(plan, db, { run, stopRequested: () => asked++ > 0 });
		expect(outcome.interrupted).toBe(true);
		expect(outcome.applied.map((a) => a.name)).toEqual(["0001_t.sql"]);
	});
});

describe("migrationRequest()", () => {
	it("puts the fence and the never-twice guard before the file, the ledger rows after it", () => {
		const request = migrationRequest(catalog.migrations[1] as never, run);
		const sql = request.sql;
		const order = [
			"workers_pipeline_fence",
			"workers_pipeline_guard",
			"INSERT INTO t",
			'INSERT INTO "d1_migrations"',
			"workers_pipeline_migrations",
		];
		const positions = order.map((needle) => sql.indexOf(needle));
		expect(positions.every((p) => p >= 0)).toBe(true);
		expect([...positions].sort((a, b) => a - b)).toEqual(positions);
	});
});
