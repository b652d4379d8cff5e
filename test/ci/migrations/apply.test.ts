import { describe, expect, it } from "vitest";
import { D1RateLimitError } from "../../../ci/cloudflare/d1-client.ts";
import { D1ApiError } from "../../../ci/errors.ts";
import {
	applyPlan,
	describeD1Failure,
	describeRowsLost,
	isLockLost,
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
import { MAX_RETRY_AFTER_MS, tryClaimLock } from "../../../ci/migrations/remote.ts";

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
/** A sleep that waits for nothing and records each pause. */
const recordedSleep = () => {
	const waits: number[] = [];
	return { waits, sleep: async (ms: number) => void waits.push(ms) };
};

const run = {
	migrationsTable: "d1_migrations",
	runId: "run-1",
	ttlSeconds: 60,
	owner: "me",
	gitSha: null,
	bookmark: "b0",
};

type Fault =
	| "lost-after-commit"
	| "lost-before"
	| "lands-late"
	| "type-error"
	| "refused"
	| "rate-limited";

/**
 * A SQLite executor whose `n`-th write request fails the way `fault` says (an Error: thrown
 * unrun). "lands-late": no answer, and the request runs just before the next write.
 */
class FaultyExecutor extends SqliteExecutor {
	writes = 0;
	calls = 0;
	faults: Record<number, Fault | Error> = {};
	unreadable = false;
	ledgerReads = 0;
	#late: string | undefined;
	override async query(sql: string, options: QueryOptions = {}) {
		this.calls++;
		if (!options.write) {
			if (/^SELECT name FROM "d1_migrations"/.test(sql)) this.ledgerReads++;
			if (this.unreadable) throw new D1ApiError("D1 query: no answer from the API");
			return super.query(sql, options);
		}
		if (this.#late !== undefined) await super.query(this.#late, { write: true });
		this.#late = undefined;
		const fault = this.faults[++this.writes];
		if (fault instanceof Error) throw fault;
		if (fault === "lands-late") this.#late = sql;
		if (fault === "lost-before" || fault === "lands-late")
			throw new D1ApiError("D1 query: no answer from the API");
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
	it("without options carries no first write, no continuity check, no state read and no release", () => {
		const request = migrationRequest(catalog.migrations[1] as never, run);
		expect(request.counts).toMatchObject({
			first: 0,
			continuity: 0,
			countsBefore: 0,
			countsAfter: 0,
			state: 0,
			release: 0,
			held: 0,
		});
		expect(request.sql).not.toContain("sqlite_master");
	});

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
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, { run, sleep: paused.sleep });
		expect(db.writes).toBe(1);
		expect(paused.waits).toEqual([250, 500, 1000, 2000, 4000]);
		expect(outcome.failure).toMatchObject({ ambiguous: true, lockLost: false });
		expect(outcome.failure?.message).toBe(
			"0001_t.sql: the apply request got no clear answer (D1 query: no answer from the API) and the ledger could not be read (D1 query: no answer from the API). Whether it applied is unknown; run `workers-pipeline plan` before anything else.",
		);
		expect(outcome.rows.map((r) => r.status)).toEqual(["failed", "not-run"]);
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

// Only the fence's own CHECK (ledger.ts, FENCE_TABLE) is a lost lock: a migration's own CHECK,
// table or column named like it is the migration's failure.
describe("isLockLost()", () => {
	it.each([
		["D1's REST text", "CHECK constraint failed: lock_lost IS NULL: SQLITE_CONSTRAINT", true],
		[
			"workerd's binding text",
			"D1_ERROR: CHECK constraint failed: lock_lost IS NULL: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)",
			true,
		],
		["the bare SQLite text", "CHECK constraint failed: lock_lost IS NULL", true],
		[
			"the migration's own CHECK",
			"CHECK constraint failed: lock_lost >= 0: SQLITE_CONSTRAINT",
			false,
		],
		[
			"a longer CHECK that starts alike",
			"CHECK constraint failed: lock_lost IS NULL OR n > 0: SQLITE_CONSTRAINT",
			false,
		],
		["a table named like the fence", "no such table: workers_pipeline_fence: SQLITE_ERROR", false],
		["a column named lock_lost", "table log has no column named lock_lost: SQLITE_ERROR", false],
	])("%s: lock lost %s", (_label, text, lost) => {
		const error = new D1ApiError(`D1 query failed (HTTP 400) [7500]: ${text}`, { status: 400 });
		expect(isLockLost(error)).toBe(lost);
		expect(
			describeD1Failure(catalog.migrations[0] as never, error).includes("lost the migration lock"),
		).toBe(lost);
	});

	it("is false for anything but a D1 answer", () => {
		expect(isLockLost(new Error("CHECK constraint failed: lock_lost IS NULL"))).toBe(false);
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

describe("applyPlan() rate limits", () => {
	const limited = (retryAfterMs?: number) => new D1RateLimitError("limited", { retryAfterMs });
	const count = (db: SqliteExecutor) => db.db.prepare("SELECT count(*) FROM t").pluck().get();

	it.each([
		["as long as its Retry-After says", [limited(5)], [5]],
		[
			"up to the longest Retry-After it waits out",
			[limited(MAX_RETRY_AFTER_MS)],
			[MAX_RETRY_AFTER_MS],
		],
		["by the backoff when it says nothing", [limited()], [250]],
		["twice, the backoff doubling", [limited(), limited()], [250, 500]],
	])("waits %s, then applies once", async (_label, faults, waits) => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = Object.fromEntries(faults.map((f, i) => [i + 1, f]));
		db.writes = 0;
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, { run, sleep: paused.sleep });
		expect(outcome.failure).toBeUndefined();
		expect(outcome.rows[0]).toMatchObject({ name: "0001_t.sql", attempts: waits.length + 1 });
		expect(paused.waits).toEqual(waits);
		expect(count(db)).toBe(1);
	});

	it("paces a rate limit without Retry-After by retryDelayMs", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: limited(), 2: limited() };
		db.writes = 0;
		const paused = recordedSleep();
		await applyPlan(plan, db, { run, sleep: paused.sleep, retryDelayMs: (a) => a * 7 });
		expect(paused.waits).toEqual([7, 14]);
	});

	it.each([
		["a Retry-After longer than it waits out", { 1: limited(MAX_RETRY_AFTER_MS + 1) }, 1, []],
		[
			`${MAX_WRITE_ATTEMPTS} rate limits in a row`,
			{ 1: limited(5), 2: limited(5), 3: limited(5) },
			MAX_WRITE_ATTEMPTS,
			[5, 5],
		],
	])("stops at %s: a definite failure, nothing applied", async (_label, faults, writes, waits) => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = faults;
		db.writes = 0;
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, { run, sleep: paused.sleep });
		expect(outcome.failure).toMatchObject({ ambiguous: false, lockLost: false, rowsLost: false });
		expect(outcome.failure?.message).toBe(
			"0001_t.sql failed on D1: limited. The request was atomic: nothing of this migration was applied.",
		);
		expect(db.writes).toBe(writes);
		expect(paused.waits).toEqual(waits);
		expect(outcome.rows.map((r) => r.status)).toEqual(["failed", "not-run"]);
	});
});

describe("applyPlan() answers lost", () => {
	const count = (db: SqliteExecutor) => db.db.prepare("SELECT count(*) FROM t").pluck().get();
	const lost = "D1 query: no answer from the API";

	it("pauses by the backoff between attempts and not after the last, reading the ledger after each", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "lost-before", 2: "lost-before", 3: "lost-before" };
		db.writes = 0;
		const paused = recordedSleep();
		const progress: string[] = [];
		const outcome = await applyPlan(plan, db, {
			run,
			sleep: paused.sleep,
			progress: (m) => progress.push(m),
		});
		expect(paused.waits).toEqual([250, 500]);
		expect(db.ledgerReads).toBe(MAX_WRITE_ATTEMPTS);
		expect(outcome.failure?.message).toBe(
			`0001_t.sql: ${MAX_WRITE_ATTEMPTS} attempts got no clear answer (last: ${lost}); the ledger did not show it after the last one, but that attempt may still have landed before this run released its lock. Run \`workers-pipeline plan\` to see whether it applied, then rerun migrate.`,
		);
		expect(progress.slice(1)).toEqual(
			Array.from(
				{ length: MAX_WRITE_ATTEMPTS },
				() => `0001_t.sql: no clear answer (${lost}); reading the ledger before any retry`,
			),
		);
	});

	it("asks retryDelayMs for the pause after each attempt by number", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "lost-before", 2: "lost-before" };
		db.writes = 0;
		const asked: number[] = [];
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, {
			run,
			sleep: paused.sleep,
			retryDelayMs: (attempt) => asked.push(attempt),
		});
		expect(outcome.rows[0]).toMatchObject({ status: "applied", attempts: 3 });
		expect(asked).toEqual([1, 2]);
		expect(paused.waits).toEqual([1, 2]);
	});

	it("confirms by the ledger an answer lost after the commit, without a retry or a pause", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "lost-after-commit" };
		db.writes = 0;
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, { run, sleep: paused.sleep });
		expect(outcome.rows[0]).toMatchObject({
			status: "applied",
			attempts: 1,
			note: `confirmed applied by a ledger read after: ${lost}`,
		});
		expect(outcome.released).toBe(false);
		expect(paused.waits).toEqual([]);
		expect(db.writes).toBe(2);
	});

	it("reads the ledger again when that read gets no answer", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "lost-after-commit" };
		db.writes = 0;
		let dropped = 0;
		const query = db.query.bind(db);
		db.query = async (sql, options = {}) => {
			if (/^SELECT name FROM/.test(sql) && dropped++ === 0) throw new D1ApiError(lost);
			return query(sql, options);
		};
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, { run, sleep: paused.sleep });
		expect(outcome.rows[0]).toMatchObject({ status: "applied", attempts: 1 });
		expect(paused.waits).toEqual([250]);
		expect(count(db)).toBe(1);
	});

	it("a first attempt refused by the never-twice guard is a failure, never applied", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		// Another hand wrote the ledger row after the plan: the guard refuses, the ledger names it.
		db.db.exec("INSERT INTO d1_migrations (name) VALUES ('0001_t.sql');");
		const outcome = await applyPlan(plan, db, { run });
		expect(outcome.failure).toMatchObject({ ambiguous: false, lockLost: false });
		expect(outcome.failure?.message).toMatch(
			/^0001_t.sql failed on D1 \(D1 error 7500\): .*already_applied/,
		);
		expect(outcome.applied).toEqual([]);
		expect(db.ledgerReads).toBe(0);
	});

	it("a retry refused after a lost attempt the ledger does not show is a definite failure", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "lost-before", 2: "refused" };
		db.writes = 0;
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, { run, sleep: paused.sleep });
		expect(outcome.failure).toMatchObject({ ambiguous: false, lockLost: false });
		expect(outcome.failure?.message).toBe(
			"0001_t.sql failed on D1: no such table: x. The request was atomic: nothing of this migration was applied.",
		);
		expect(db.ledgerReads).toBe(2);
	});

	it("a retry refused when the ledger cannot be read is a definite failure", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 1: "lost-before", 2: "refused" };
		db.writes = 0;
		let reads = 0;
		const query = db.query.bind(db);
		db.query = async (sql, options = {}) => {
			if (/^SELECT name FROM/.test(sql) && reads++ > 0) throw new D1ApiError(lost);
			return query(sql, options);
		};
		const outcome = await applyPlan(plan, db, { run, sleep: recordedSleep().sleep });
		expect(outcome.failure).toMatchObject({ ambiguous: false });
		expect(outcome.failure?.message).toMatch(/^0001_t.sql failed on D1: no such table: x/);
	});

	it.each([
		["the last migration, its release folded in: applied and released", true, []],
		["a migration without the release: applied, the lock still held", false, [run.runId]],
	])(
		"an attempt that lands after the ledger read and is refused on retry: %s",
		async (_l, withRelease, held) => {
			const db = new FaultyExecutor();
			const plan = await planned(db);
			db.writes = 0;
			db.faults = { 2: "lands-late" };
			const record = {
				runId: run.runId,
				owner: "me",
				environment: null,
				gitSha: null,
				bookmark: "b0",
				status: "succeeded" as const,
				detail: null,
			};
			const digests = replayDigests(catalog.migrations, "d1_migrations");
			const outcome = await applyPlan(plan, db, {
				run,
				sleep: recordedSleep().sleep,
				...(withRelease && digests
					? { release: validatedReleaseSql(digests, { migrationsTable: "d1_migrations", record }) }
					: {}),
			});
			expect(outcome.failure).toBeUndefined();
			expect(outcome.rows[1]).toMatchObject({
				name: "0002_seed.sql",
				status: "applied",
				attempts: 2,
			});
			expect(outcome.rows[1]?.note).toBe(
				`an earlier attempt landed late (after: ${lost}); the retry was refused and the ledger confirms it applied once`,
			);
			expect(outcome.released).toBe(withRelease);
			expect(db.db.prepare(`SELECT run_id FROM ${LOCK_TABLE}`).pluck().all()).toEqual(held);
			expect(count(db)).toBe(1);
		},
	);

	it("an attempt that landed late with its release, the release check unanswered: not released", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.writes = 0;
		db.faults = { 2: "lands-late" };
		const digests = replayDigests(catalog.migrations, "d1_migrations");
		if (!digests) throw new Error("no replay");
		const query = db.query.bind(db);
		db.query = async (sql, options = {}) => {
			if (sql.includes("AS landed")) throw new D1ApiError(lost);
			return query(sql, options);
		};
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, {
			run,
			sleep: paused.sleep,
			release: validatedReleaseSql(digests, {
				migrationsTable: "d1_migrations",
				record: {
					runId: run.runId,
					owner: "me",
					environment: null,
					gitSha: null,
					bookmark: "b0",
					status: "succeeded",
					detail: null,
				},
			}),
		});
		expect(outcome.rows[1]).toMatchObject({ status: "applied", attempts: 2 });
		expect(outcome.released).toBe(false);
		// The retry's own pause, then the release check's six tries.
		expect(paused.waits).toEqual([250, 250, 500, 1000, 2000, 4000]);
	});

	it("retries the record of wrangler's migrations after a lost answer (it is idempotent)", async () => {
		const db = new FaultyExecutor();
		await planned(db);
		db.db.exec("INSERT INTO d1_migrations (name) VALUES ('0001_t.sql'); CREATE TABLE t (v TEXT);");
		const claim = await tryClaimLock(db, run);
		if (!claim.acquired || !claim.state) throw new Error("no lock");
		const plan = planMigrations(catalog, claim.state.ledger);
		db.writes = 0;
		db.faults = { 1: "lost-after-commit" };
		const paused = recordedSleep();
		const outcome = await applyPlan(plan, db, { run, sleep: paused.sleep });
		expect(outcome.recorded).toEqual(["0001_t.sql"]);
		expect(outcome.failure).toBeUndefined();
		expect(paused.waits).toEqual([250]);
		expect(db.db.prepare(`SELECT count(*) FROM ${AUDIT_TABLE}`).pluck().get()).toBe(2);
	});
});

describe("applyPlan() row-count guard", () => {
	const tablesSql =
		"CREATE TABLE parent (id INTEGER PRIMARY KEY);\nCREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE);\nCREATE TABLE grandchild (id INTEGER PRIMARY KEY, child_id INTEGER REFERENCES child (id) ON DELETE CASCADE);\nINSERT INTO parent VALUES (1);\nINSERT INTO child VALUES (1, 1), (2, 1);\nINSERT INTO grandchild VALUES (1, 1), (2, 1), (3, 2);\n";
	const families = parseCatalog({
		dir: "migrations",
		pattern: "migrations/*.sql",
		retired: [],
		files: [
			{
				name: "0001_tables.sql",
				bytes: Buffer.from(tablesSql),
			},
			{ name: "0002_empty_parent.sql", bytes: Buffer.from("DELETE FROM parent;\n") },
		],
	});
	const guardFor = (m: { name: string }) =>
		m.name === "0002_empty_parent.sql"
			? [
					{ table: "child", via: "parent" },
					{ table: "grandchild", via: "child" },
				]
			: [];

	async function applyFamilies(
		db: FaultyExecutor,
		before?: () => void,
		sleep = recordedSleep().sleep,
	) {
		const claim = await tryClaimLock(db, run);
		if (!claim.acquired || !claim.state) throw new Error("no lock");
		const plan = planMigrations(families, claim.state.ledger);
		before?.();
		return applyPlan(plan, db, { run, guardFor, sleep });
	}

	it("refuses a migration that would cascade away rows, naming each table and its count", async () => {
		const db = new FaultyExecutor();
		const outcome = await applyFamilies(db);
		expect(outcome.applied.map((a) => a.name)).toEqual(["0001_tables.sql"]);
		expect(outcome.failure).toMatchObject({ rowsLost: true, ambiguous: false, lockLost: false });
		expect(outcome.failure?.message).toContain(
			"\n  child: 2 row(s) now, reached by ON DELETE CASCADE from parent\n  grandchild: 3 row(s) now, reached by ON DELETE CASCADE from child\n",
		);
		expect(db.db.prepare("SELECT count(*) FROM grandchild").pluck().get()).toBe(3);
	});

	it("a guarded migration refused for another reason is not a loss of rows", async () => {
		const db = new FaultyExecutor();
		const outcome = await applyFamilies(db, () => {
			db.faults = {
				2: new D1ApiError("CHECK constraint failed: lock_lost IS NULL", { status: 400 }),
			};
			db.writes = 0;
		});
		expect(outcome.failure).toMatchObject({ rowsLost: false, lockLost: true });
		expect(outcome.failure?.message).toMatch(
			/^0002_empty_parent.sql was not applied: this run lost the migration lock/,
		);
	});

	// Only the guard's own CHECK (rowCountsAfterSql into ROW_GUARD_TABLE) is a loss of rows.
	it.each([
		["D1's REST text", "CHECK constraint failed: rows_lost IS NULL: SQLITE_CONSTRAINT", true],
		[
			"workerd's binding text",
			"D1_ERROR: CHECK constraint failed: rows_lost IS NULL: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)",
			true,
		],
		[
			"the migration's own CHECK",
			"CHECK constraint failed: rows_lost >= 0: SQLITE_CONSTRAINT",
			false,
		],
		[
			"a longer CHECK that starts alike",
			"CHECK constraint failed: rows_lost IS NULL OR n > 0: SQLITE_CONSTRAINT",
			false,
		],
		[
			"a table named like the guard",
			"no such table: workers_pipeline_row_guard: SQLITE_ERROR",
			false,
		],
		["a column named rows_lost", "table log has no column named rows_lost: SQLITE_ERROR", false],
	])("a guarded migration refused with %s: rows lost %s", async (_label, text, lost) => {
		const db = new FaultyExecutor();
		const outcome = await applyFamilies(db, () => {
			db.faults = {
				2: new D1ApiError(`D1 query failed (HTTP 400) [7500]: ${text}`, { status: 400 }),
			};
			db.writes = 0;
		});
		expect(outcome.failure?.rowsLost).toBe(lost);
		expect(
			outcome.failure?.message.startsWith(
				"0002_empty_parent.sql was not applied: it would delete rows",
			),
		).toBe(lost);
	});

	it("a guarded migration failing on its own rows_lost column is D1's failure, not a cascade", async () => {
		const db = new FaultyExecutor();
		const own = parseCatalog({
			dir: "migrations",
			pattern: "migrations/*.sql",
			retired: [],
			files: [
				{ name: "0001_tables.sql", bytes: Buffer.from(tablesSql) },
				{
					name: "0002_empty_parent.sql",
					bytes: Buffer.from(
						"CREATE TABLE log (rows_lost INTEGER CHECK (rows_lost >= 0));\nINSERT INTO log VALUES (-1);\nDELETE FROM parent;\n",
					),
				},
			],
		});
		const claim = await tryClaimLock(db, run);
		if (!claim.acquired || !claim.state) throw new Error("no lock");
		const outcome = await applyPlan(planMigrations(own, claim.state.ledger), db, { run, guardFor });
		expect(outcome.applied.map((a) => a.name)).toEqual(["0001_tables.sql"]);
		expect(outcome.failure).toMatchObject({ rowsLost: false, lockLost: false });
		expect(outcome.failure?.message).toMatch(
			/^0002_empty_parent.sql failed on D1 \(D1 error 7500\): .*rows_lost >= 0/,
		);
	});

	it("a migration's own refusal that mentions rows_lost, with nothing guarded, is D1's failure", async () => {
		const db = new FaultyExecutor();
		const own = parseCatalog({
			dir: "migrations",
			pattern: "migrations/*.sql",
			retired: [],
			files: [
				{
					name: "0001_log.sql",
					bytes: Buffer.from(
						"CREATE TABLE log (rows_lost INTEGER CHECK (rows_lost >= 0));\nINSERT INTO log VALUES (-1);\n",
					),
				},
			],
		});
		const claim = await tryClaimLock(db, run);
		if (!claim.acquired || !claim.state) throw new Error("no lock");
		const outcome = await applyPlan(planMigrations(own, claim.state.ledger), db, { run });
		expect(outcome.failure).toMatchObject({ rowsLost: false, lockLost: false });
		expect(outcome.failure?.message).toMatch(
			/^0001_log.sql failed on D1 \(D1 error 7500\): .*rows_lost >= 0/,
		);
	});

	it("says ? for counts it cannot read, after retrying the read", async () => {
		const db = new FaultyExecutor();
		const paused = recordedSleep();
		const outcome = await applyFamilies(
			db,
			() => {
				db.unreadable = true;
			},
			paused.sleep,
		);
		expect(paused.waits).toEqual([250, 500, 1000, 2000, 4000]);
		expect(outcome.failure?.rowsLost).toBe(true);
		expect(outcome.failure?.message).toContain(
			"\n  child: ? row(s) now, reached by ON DELETE CASCADE from parent\n  grandchild: ? row(s)",
		);
	});
});

describe("applyPlan() requests", () => {
	const three = parseCatalog({
		dir: "migrations",
		pattern: "migrations/*.sql",
		retired: [],
		files: [
			{ name: "0001_a.sql", bytes: Buffer.from("CREATE TABLE a (v TEXT);\n") },
			{ name: "0002_b.sql", bytes: Buffer.from("CREATE TABLE b (v TEXT);\n") },
			{ name: "0003_c.sql", bytes: Buffer.from("CREATE TABLE c (v TEXT);\n") },
		],
	});
	/** A database with 0001 applied by this pipeline, the lock held: the plan is 0002, 0003. */
	async function oneApplied() {
		const db = new FaultyExecutor();
		await planned(db);
		const first = parseCatalog({
			dir: "migrations",
			pattern: "migrations/*.sql",
			retired: [],
			files: [{ name: "0001_a.sql", bytes: Buffer.from("CREATE TABLE a (v TEXT);\n") }],
		});
		const claim = await tryClaimLock(db, run);
		if (!claim.acquired || !claim.state) throw new Error("no lock");
		await applyPlan(planMigrations(first, claim.state.ledger), db, { run });
		const again = await tryClaimLock(db, run);
		if (!again.acquired || !again.state) throw new Error("no lock");
		return { db, plan: planMigrations(three, again.state.ledger) };
	}
	const sending = (db: SqliteExecutor) => {
		const sent: string[] = [];
		const query = db.query.bind(db);
		db.query = async (sql, options) => {
			sent.push(sql);
			return query(sql, options);
		};
		return sent;
	};

	it("refuses to build on a ledger that lost this run's last migration mid-run (restored under it)", async () => {
		const { db, plan } = await oneApplied();
		expect(plan.head).toBe("0001_a.sql");
		const outcome = await applyPlan(plan, db, {
			run,
			progress: (m) => {
				if (m.startsWith("applying 2/2"))
					db.db.exec("DELETE FROM d1_migrations WHERE name = '0002_b.sql';");
			},
		});
		expect(outcome.applied.map((a) => a.name)).toEqual(["0002_b.sql"]);
		expect(outcome.failure).toMatchObject({ lockLost: true });
		expect(outcome.failure?.migration.name).toBe("0003_c.sql");
		expect(db.db.prepare("SELECT name FROM sqlite_master WHERE name = 'c'").all()).toEqual([]);
	});

	it("reads the state only in the last migration's request, one request per migration", async () => {
		const { db, plan } = await oneApplied();
		const sent = sending(db);
		const outcome = await applyPlan(plan, db, { run });
		expect(sent).toHaveLength(2);
		expect(sent.map((sql) => sql.includes("FROM sqlite_master"))).toEqual([false, true]);
		expect(outcome.stateAfter?.ledger.applied.map((r) => r.name)).toEqual([
			"0001_a.sql",
			"0002_b.sql",
			"0003_c.sql",
		]);
	});

	it("reads no state inside an import (D1's import answers no rows)", async () => {
		const { db, plan } = await oneApplied();
		const imported: string[] = [];
		const importSql = db.importSql.bind(db);
		db.importSql = async (sql) => {
			imported.push(sql);
			return importSql(sql);
		};
		const outcome = await applyPlan(plan, db, { run, importReason: () => "too large" });
		expect(imported).toHaveLength(2);
		expect(imported.some((sql) => sql.includes("FROM sqlite_master"))).toBe(false);
		expect(outcome.stateAfter).toBeUndefined();
	});

	it("checks no release after a confirmed lost answer when no release rode with it", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		db.faults = { 2: "lost-after-commit" };
		db.writes = 0;
		const sent = sending(db);
		const outcome = await applyPlan(plan, db, { run, sleep: recordedSleep().sleep });
		expect(outcome.released).toBe(false);
		expect(sent.some((sql) => sql.includes("AS landed"))).toBe(false);
		expect(sent).toHaveLength(3);
	});

	it("counts a migration's duration within the time the apply took", async () => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		const started = performance.now();
		const outcome = await applyPlan(plan, db, { run });
		const took = performance.now() - started;
		for (const a of outcome.applied) {
			expect(a.durationMs).toBeGreaterThanOrEqual(0);
			expect(a.durationMs).toBeLessThanOrEqual(Math.ceil(took));
		}
	});

	it("a plan that only records wrangler's migrations says it wrote", async () => {
		const db = new FaultyExecutor();
		await planned(db);
		db.db.exec(
			"INSERT INTO d1_migrations (name) VALUES ('0001_t.sql'), ('0002_seed.sql'); CREATE TABLE t (v TEXT);",
		);
		const claim = await tryClaimLock(db, run);
		if (!claim.acquired || !claim.state) throw new Error("no lock");
		const plan = planMigrations(catalog, claim.state.ledger);
		expect(plan.pending).toEqual([]);
		const before = Date.now();
		const outcome = await applyPlan(plan, db, { run });
		expect(outcome.recorded).toEqual(["0001_t.sql", "0002_seed.sql"]);
		expect(outcome.wrote).toBe(true);
		expect(outcome.lastWriteAt).toBeGreaterThanOrEqual(before);
	});
});

describe("applyPlan() release boundary", () => {
	it.each([
		["exactly as large as D1 takes: folded in", 0, true],
		["one byte larger: left out", 1, false],
	])("a last request with the release %s", async (_label, over, folded) => {
		const db = new FaultyExecutor();
		const plan = await planned(db);
		const last = plan.pending.at(-1)?.migration;
		if (!last) throw new Error("no pending migration");
		const release = (pad: number) => `SELECT '${"x".repeat(pad)}';`;
		const options = { after: "0001_t.sql", readState: true, release: release(0) };
		const base = Buffer.byteLength(migrationRequest(last, run, options).sql, "utf8");
		const padded = release(MAX_REQUEST_SQL_BYTES - base + over);
		const sent: string[] = [];
		const query = db.query.bind(db);
		db.query = async (sql, queryOptions) => {
			sent.push(sql);
			return query(sql, queryOptions);
		};
		await applyPlan(plan, db, { run, release: padded });
		expect(sent.at(-1)?.includes(padded)).toBe(folded);
		if (folded) expect(Buffer.byteLength(sent.at(-1) ?? "", "utf8")).toBe(MAX_REQUEST_SQL_BYTES);
	});
});
