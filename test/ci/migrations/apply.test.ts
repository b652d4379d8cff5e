import { describe, expect, it } from "vitest";
import { D1RateLimitError } from "../../../ci/cloudflare/d1-client.ts";
import { D1ApiError } from "../../../ci/errors.ts";
import {
	applyPlan,
	describeD1Failure,
	describeRowsLost,
	MAX_REQUEST_SQL_BYTES,
	MAX_WRITE_ATTEMPTS,
	migrationRequest,
	replayDigests,
	validatedReleaseSql,
} from "../../../ci/migrations/apply.ts";
import { parseCatalog } from "../../../ci/migrations/catalog.ts";
import { type QueryOptions, SqliteExecutor } from "../../../ci/migrations/executor.ts";
import {
	AUDIT_TABLE,
	LOCK_TABLE,
	RUNS_TABLE,
	runRecordSql,
} from "../../../ci/migrations/ledger.ts";
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
	faults: Record<
		number,
		"lost-after-commit" | "lost-before" | "type-error" | "refused" | "rate-limited"
	> = {};
	unreadable = false;
	override async query(sql: string, options: QueryOptions = {}) {
		this.calls++;
		if (!options.write) {
			if (this.unreadable) throw new D1ApiError("D1 query: no answer from the API");
			return super.query(sql, options);
		}
		const fault = this.faults[++this.writes];
		if (fault === "lost-before") throw new D1ApiError("D1 query: no answer from the API");
		if (fault === "rate-limited") throw new D1RateLimitError("limited", { retryAfterMs: 5 });
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

describe("applyPlan() with the validated release", () => {
	const record = {
		runId: run.runId,
		owner: "me",
		environment: null,
		gitSha: null,
		bookmark: "b0",
		status: "running" as const,
		detail: null,
	};
	const release = (digests = replayDigests(catalog.migrations, "d1_migrations")) =>
		validatedReleaseSql(digests ?? { ledger: "", schema: "" }, {
			migrationsTable: "d1_migrations",
			record: { ...record, status: "succeeded" },
		});
	const lock = (db: SqliteExecutor) =>
		db.db.prepare(`SELECT run_id FROM ${LOCK_TABLE}`).pluck().all();
	const status = (db: SqliteExecutor) =>
		db.db.prepare(`SELECT status FROM ${RUNS_TABLE}`).pluck().all();

	async function applyWith(db: FaultyExecutor, sql: string, before?: () => void) {
		const plan = await planned(db);
		before?.();
		db.writes = 0;
		const outcome = await applyPlan(plan, db, {
			run,
			firstWrite: [runRecordSql(record)],
			release: sql,
		});
		return { outcome, writes: db.writes };
	}

	it("releases the lock and records success in the last migration's own request", async () => {
		const db = new FaultyExecutor();
		const { outcome, writes } = await applyWith(db, release());
		expect(outcome.failure).toBeUndefined();
		expect(outcome.released).toBe(true);
		expect(writes).toBe(catalog.migrations.length);
		expect(lock(db)).toEqual([]);
		expect(status(db)).toEqual(["succeeded"]);
		expect(outcome.stateAfter?.ledger.applied.map((r) => r.name)).toEqual([
			"0001_t.sql",
			"0002_seed.sql",
		]);
	});

	it("keeps the lock (and the run running) when D1's schema is not the replay's", async () => {
		const db = new FaultyExecutor();
		const { outcome } = await applyWith(db, release(), () =>
			db.db.exec("CREATE TABLE made_by_hand (x);"),
		);
		expect(outcome.failure).toBeUndefined();
		expect(outcome.released).toBe(false);
		expect(lock(db)).toEqual([run.runId]);
		expect(status(db)).toEqual(["running"]);
	});

	it("keeps the lock when the ledger is not the one the replay gives", async () => {
		const db = new FaultyExecutor();
		const other = replayDigests(catalog.migrations.slice(0, 1), "d1_migrations");
		const { outcome } = await applyWith(db, release(other));
		expect(outcome.released).toBe(false);
		expect(lock(db)).toEqual([run.runId]);
	});

	it("leaves the release out when it would make the request larger than D1 takes", async () => {
		const db = new FaultyExecutor();
		const big = release({ ledger: "", schema: "x".repeat(MAX_REQUEST_SQL_BYTES) });
		const sent: string[] = [];
		const query = db.query.bind(db);
		db.query = async (sql, options) => {
			sent.push(sql);
			return query(sql, options);
		};
		const { outcome } = await applyWith(db, big);
		expect(outcome.released).toBe(false);
		expect(sent.some((sql) => sql.includes("x".repeat(1000)))).toBe(false);
		expect(sent.some((sql) => sql.includes("INSERT INTO t"))).toBe(true);
		expect(lock(db)).toEqual([run.runId]);
	});

	it.each([
		["released", true, []],
		["did not release (schema not the replay's)", false, ["run-1"]],
	] as const)(
		"reads, after an answer lost once it landed, that it %s",
		async (_, released, held) => {
			const db = new FaultyExecutor();
			const plan = await planned(db);
			if (!released) db.db.exec("CREATE TABLE made_by_hand (x);");
			db.writes = 0;
			db.faults = { 2: "lost-after-commit" };
			const outcome = await applyPlan(plan, db, {
				run,
				firstWrite: [runRecordSql(record)],
				release: release(),
				retryDelayMs: () => 1,
			});
			expect(outcome.failure).toBeUndefined();
			expect(outcome.released).toBe(released);
			expect(outcome.stateAfter).toBeUndefined();
			expect(lock(db)).toEqual(held);
			expect(db.writes).toBe(2);
			expect(db.db.prepare("SELECT count(*) FROM t").pluck().get()).toBe(1);
		},
	);

	it("survives a lost answer on the last migration: the retry carries the release, applied once", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.writes = 0;
		db.faults = { 2: "lost-before" };
		const outcome = await applyPlan(plan, db, {
			run,
			firstWrite: [runRecordSql(record)],
			release: release(),
			retryDelayMs: () => 1,
		});
		// The retry carried the release and landed: released, applied once.
		expect(outcome.failure).toBeUndefined();
		expect(outcome.released).toBe(true);
		expect(db.db.prepare("SELECT count(*) FROM t").pluck().get()).toBe(1);
	});
});

describe("replayDigests()", () => {
	it("is undefined when the replay fails", () => {
		const broken = parseCatalog({
			dir: "migrations",
			pattern: "migrations/*.sql",
			retired: [],
			files: [{ name: "0001_bad.sql", bytes: Buffer.from("INSERT INTO nowhere VALUES (1);\n") }],
		});
		expect(replayDigests(broken.migrations, "d1_migrations")).toBeUndefined();
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

describe("applyPlan() outcomes", () => {
	const audit = (db: SqliteExecutor) =>
		db.db
			.prepare(
				`SELECT name, applied_by, recorded_by, run_id, bookmark FROM ${AUDIT_TABLE} ORDER BY name`,
			)
			.all();

	it("applies every pending migration with its ledger rows, sends firstWrite once, reads the state after the last", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		const progress: string[] = [];
		const before = Date.now();
		const outcome = await applyPlan(plan, db, {
			run,
			progress: (m) => progress.push(m),
			firstWrite: [
				`INSERT INTO ${RUNS_TABLE} (run_id, owner, status) VALUES ('run-1', 'me', 'running');`,
			],
		});
		expect(outcome.failure).toBeUndefined();
		expect(outcome.wrote).toBe(true);
		expect(outcome.lastWriteAt).toBeGreaterThanOrEqual(before);
		expect(outcome.applied.map((a) => a.name)).toEqual(["0001_t.sql", "0002_seed.sql"]);
		expect(outcome.rows).toEqual([
			expect.objectContaining({
				name: "0001_t.sql",
				status: "applied",
				attempts: 1,
				checksum: catalog.migrations[0]?.checksum,
			}),
			expect.objectContaining({ name: "0002_seed.sql", status: "applied", attempts: 1 }),
		]);
		expect(outcome.rows[0]).not.toHaveProperty("note");
		expect(progress).toEqual(["applying 1/2: 0001_t.sql", "applying 2/2: 0002_seed.sql"]);
		expect(outcome.stateAfter?.ledger.applied.map((r) => r.name)).toEqual([
			"0001_t.sql",
			"0002_seed.sql",
		]);
		expect(db.db.prepare(`SELECT count(*) FROM ${RUNS_TABLE}`).pluck().get()).toBe(1);
		expect(audit(db)).toEqual([
			{
				name: "0001_t.sql",
				applied_by: "me",
				recorded_by: "migrate",
				run_id: "run-1",
				bookmark: "b0",
			},
			{
				name: "0002_seed.sql",
				applied_by: "me",
				recorded_by: "migrate",
				run_id: "run-1",
				bookmark: "b0",
			},
		]);
	});

	it("records what wrangler applied alone, then applies the rest", async () => {
		const db = new FaultyExecutor();
		await planned(db);
		db.db.exec("INSERT INTO d1_migrations (name) VALUES ('0001_t.sql'); CREATE TABLE t (v TEXT);");
		const claim = await tryClaimLock(db, run);
		if (!claim.acquired || !claim.state) throw new Error("no lock");
		const plan = planMigrations(catalog, claim.state.ledger);
		const outcome = await applyPlan(plan, db, { run });
		expect(outcome.recorded).toEqual(["0001_t.sql"]);
		expect(outcome.rows.map((r) => [r.name, r.status, r.note])).toEqual([
			["0001_t.sql", "recorded", "applied by wrangler; checksum recorded"],
			["0002_seed.sql", "applied", undefined],
		]);
		expect(audit(db)[0]).toEqual({
			name: "0001_t.sql",
			applied_by: "wrangler (recorded by me)",
			recorded_by: "adopted",
			run_id: "run-1",
			bookmark: "b0",
		});
	});

	it("writes nothing for an empty plan", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		const outcome = await applyPlan({ ...plan, pending: [] }, db, { run });
		expect(outcome).toEqual({
			rows: [],
			applied: [],
			recorded: [],
			interrupted: false,
			wrote: false,
			released: false,
		});
	});

	it("is refused by the fence once another run holds the lock: lockLost, nothing applied", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.db.exec(`UPDATE ${LOCK_TABLE} SET run_id = 'run-2';`);
		const outcome = await applyPlan(plan, db, { run });
		expect(outcome.failure).toMatchObject({ lockLost: true, ambiguous: false });
		expect(outcome.failure?.message).toMatch(
			/^0001_t.sql was not applied: this run lost the migration lock/,
		);
		expect(outcome.applied).toEqual([]);
		expect(outcome.wrote).toBe(true);
	});

	it("is refused when the ledger no longer ends where the plan began (a restore under the run)", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		const outcome = await applyPlan({ ...plan, head: "0000_gone.sql" }, db, { run });
		expect(outcome.failure?.lockLost).toBe(true);
		expect(db.db.prepare("SELECT count(*) FROM d1_migrations").pluck().get()).toBe(0);
	});

	it("waits out a short rate limit and applies on the next attempt", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "rate-limited" };
		db.writes = 0;
		const progress: string[] = [];
		const outcome = await applyPlan(plan, db, { run, progress: (m) => progress.push(m) });
		expect(outcome.failure).toBeUndefined();
		expect(outcome.rows[0]).toMatchObject({ name: "0001_t.sql", attempts: 2 });
		expect(progress[1]).toMatch(
			/^0001_t.sql: rate limited; retrying in 1 s \(at \d\d:\d\d:\d\d UTC\)$/,
		);
	});

	it("retries an answer lost before the commit after the ledger shows it did not land", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "lost-before" };
		db.writes = 0;
		const outcome = await applyPlan(plan, db, { run, retryDelayMs: () => 1 });
		expect(outcome.failure).toBeUndefined();
		expect(outcome.rows[0]).toMatchObject({ name: "0001_t.sql", attempts: 2 });
		expect(db.db.prepare("SELECT count(*) FROM t").pluck().get()).toBe(1);
	});

	it("gives up as ambiguous after every attempt got no answer", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = Object.fromEntries(
			Array.from({ length: MAX_WRITE_ATTEMPTS }, (_, i) => [i + 1, "lost-before"]),
		);
		db.writes = 0;
		const outcome = await applyPlan(plan, db, { run, retryDelayMs: () => 1 });
		expect(db.writes).toBe(MAX_WRITE_ATTEMPTS);
		expect(outcome.failure).toMatchObject({ ambiguous: true, lockLost: false });
		expect(outcome.failure?.message).toMatch(
			`0001_t.sql: ${MAX_WRITE_ATTEMPTS} attempts got no clear answer`,
		);
		expect(outcome.rows.map((r) => r.status)).toEqual(["failed", "not-run"]);
	});

	it("gives up as ambiguous when the ledger cannot be read after a lost answer", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "lost-before" };
		db.writes = 0;
		db.unreadable = true;
		const outcome = await applyPlan(plan, db, { run, retryDelayMs: () => 1 });
		expect(db.writes).toBe(1);
		expect(outcome.failure).toMatchObject({ ambiguous: true });
		expect(outcome.failure?.message).toMatch(/the ledger could not be read/);
	});

	it("accepts a retry refused because the earlier attempt landed late", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		// Attempt 1: no answer and not in the ledger yet; attempt 2: refused (it had landed).
		db.faults = { 1: "lost-before", 2: "refused" };
		db.writes = 0;
		let reads = 0;
		const query = db.query.bind(db);
		db.query = async (sql, options = {}) => {
			if (!options.write && /SELECT name FROM "d1_migrations"/.test(sql) && reads++ === 1) {
				db.db.exec("INSERT INTO d1_migrations (name) VALUES ('0001_t.sql');");
			}
			return query(sql, options);
		};
		const outcome = await applyPlan(plan, db, { run, retryDelayMs: () => 1 });
		expect(outcome.rows[0]).toMatchObject({ name: "0001_t.sql", status: "applied", attempts: 2 });
		expect(outcome.rows[0]?.note).toMatch(/an earlier attempt landed late/);
	});

	it("goes through the import API when told why, and says so", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		const outcome = await applyPlan(plan, db, {
			run,
			importReason: (m) => (m.name === "0002_seed.sql" ? "too large" : undefined),
		});
		expect(outcome.rows.map((r) => r.note)).toEqual([
			undefined,
			"applied through D1's import API: too large",
		]);
		expect(outcome.stateAfter).toBeUndefined();
		expect(db.db.prepare("SELECT count(*) FROM t").pluck().get()).toBe(1);
	});
});

describe("describeD1Failure()", () => {
	const migration = catalog.migrations[0] as never;
	it.each([
		[
			new D1ApiError("no such table: x", { status: 400, d1Code: 7500 }),
			"0001_t.sql failed on D1 (D1 error 7500): no such table: x. The request was atomic: nothing of this migration was applied.",
		],
		[
			new D1ApiError("no such table: x", { status: 400 }),
			"0001_t.sql failed on D1: no such table: x. The request was atomic: nothing of this migration was applied.",
		],
	])("%s", (error, message) => {
		expect(describeD1Failure(migration, error)).toBe(message);
	});
});

describe("describeRowsLost()", () => {
	it("names each guarded table, its count (or ?) and the cascade", () => {
		const text = describeRowsLost(
			catalog.migrations[0] as never,
			[
				{ table: "posts", via: "users" },
				{ table: "likes", via: "posts" },
			],
			new Map([
				["posts", 3],
				["likes", Number.NaN],
			]),
		);
		expect(text).toContain(
			"\n  posts: 3 row(s) now, reached by ON DELETE CASCADE from users\n  likes: ? row(s) now, reached by ON DELETE CASCADE from posts\n",
		);
		expect(text).toMatch(/^0001_t.sql was not applied/);
	});
});
