// Seeded random faults on D1's /query endpoint (5xx, 429, resets before and after the commit,
// delays past the client timeout) during `migrate`: whatever the outcome, the database must be
// consistent (every migration either applied and recorded, or neither; nothing twice), and a clean
// run afterwards must finish the job. A failing seed replays its fault sequence with WP_FAULT_SEEDS=<seed>[,<seed>…].
import { createHash } from "node:crypto";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	type CloudflareApi,
	type Fault,
	type FaultHook,
	randomFaultHook,
	seededRandom,
	startCloudflareApi,
} from "../../support/cloudflare-api.ts";
import {
	ACCOUNT_ID,
	auditChecksums,
	createMigrateProject,
	ENV,
	EXAMPLE_FILES,
	hasTable,
	type JsonReport,
	ledgerNames,
	type MigrateProject,
	newToken,
	nextMigrationName,
} from "./_support.ts";

const REQUEST_TIMEOUT_MS = 500;
const FAULTS: Fault[] = [
	{ kind: "status", status: 500 },
	{ kind: "status", status: 503 },
	{ kind: "status", status: 429 },
	{ kind: "reset-before" },
	{ kind: "reset-after" },
	// Longer than the client timeout: the client gives up, the server still commits afterwards.
	{ kind: "delay", ms: REQUEST_TIMEOUT_MS + 300 },
	{ kind: "delay", ms: 30 },
];

// The examples plus a table and a seed migration without explicit ids: applying that one twice
// would duplicate its rows instead of failing, so a double apply cannot hide.
const TALLY = nextMigrationName("create_tally", 1);
const TALLY_SEED = nextMigrationName("seed_tally", 2);
const FILES: Record<string, string> = {
	...EXAMPLE_FILES,
	[TALLY]: "CREATE TABLE tally (id INTEGER PRIMARY KEY, label TEXT NOT NULL);\n",
	[TALLY_SEED]: "INSERT INTO tally (label) VALUES ('one'), ('two'), ('three');\n",
};
const NAMES = Object.keys(FILES).sort();
const CHECKSUM = new Map(
	NAMES.map((n) => [
		n,
		createHash("sha256")
			.update(FILES[n] ?? "")
			.digest("hex"),
	]),
);
const BOOKKEEPING = /^(d1_migrations|workers_pipeline_\w+|sqlite_sequence)$/;

/** A database with exactly the first `count` migrations applied, each in its own transaction. */
function expectedAfter(count: number) {
	const db = new Database(":memory:");
	try {
		db.pragma("foreign_keys = ON");
		for (const name of NAMES.slice(0, count)) {
			db.exec("BEGIN");
			db.exec(FILES[name] ?? "");
			db.exec("COMMIT");
		}
		return userShape(db);
	} finally {
		db.close();
	}
}

function userShape(db: Database.Database) {
	const objects = (
		db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name").all() as {
			type: string;
			name: string;
			tbl_name: string;
			sql: string | null;
		}[]
	).filter((o) => !BOOKKEEPING.test(o.tbl_name) && !o.name.startsWith("sqlite_autoindex"));
	const counts = Object.fromEntries(
		objects
			.filter((o) => o.type === "table")
			.map((o) => [o.name, db.prepare(`SELECT count(*) FROM "${o.name}"`).pluck().get()]),
	);
	return { schema: objects.map(({ type, name, sql }) => ({ type, name, sql })), counts };
}

const EXPECTED = new Map<number, ReturnType<typeof userShape>>();

/** Every invariant that must hold after any run, faults or not; returns the violations. */
function checkConsistency(p: MigrateProject): string[] {
	const db = p.db();
	const problems: string[] = [];
	const names = ledgerNames(db);
	if (new Set(names).size !== names.length)
		problems.push(`a migration is in the ledger twice: ${names.join(", ")}`);
	if (names.join() !== NAMES.slice(0, names.length).join())
		problems.push(`the ledger is not a prefix of the catalog: ${names.join(", ")}`);
	const audit = auditChecksums(db);
	for (const name of names) {
		if (audit.get(name) !== CHECKSUM.get(name))
			problems.push(`${name} is applied but its checksum is not recorded (${audit.get(name)})`);
	}
	for (const name of audit.keys()) {
		if (!names.includes(name)) problems.push(`${name} has a checksum but is not in the ledger`);
	}
	const expected = EXPECTED.get(names.length);
	const actual = userShape(db);
	try {
		expect(actual).toEqual(expected);
	} catch {
		problems.push(
			`the database is not what the ${names.length} recorded migration(s) produce: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
		);
	}
	if (hasTable(db, "workers_pipeline_lock")) {
		const holders = db.prepare("SELECT run_id FROM workers_pipeline_lock").pluck().all();
		if (holders.length) problems.push(`the migration lock is still held by ${holders.join()}`);
	}
	return problems;
}

function seedsToRun(): number[] {
	const only = process.env.WP_FAULT_SEEDS;
	if (only) return only.split(",").map((s) => Number.parseInt(s, 10));
	return Array.from({ length: 200 }, (_, i) => i + 1);
}

describe("migrate under seeded random faults on /query", () => {
	const token = newToken();
	let api: CloudflareApi;
	const hooks = new Map<string, FaultHook>();
	const stats = { runs: 0, faults: 0, failedRuns: 0, appliedInFaultedRun: 0, unknownOutcomes: 0 };

	beforeAll(async () => {
		for (let count = 0; count <= NAMES.length; count++) EXPECTED.set(count, expectedAfter(count));
		// 200 faulted runs send ~5,000 requests in a minute: past Cloudflare's 1,200 per 5 minutes
		// on purpose (this test is about faults, not quotas), so the quota is lifted here.
		api = await startCloudflareApi({
			token,
			accountId: ACCOUNT_ID,
			limits: { rateLimit: { requests: Number.MAX_SAFE_INTEGER, windowMs: 1, blockMs: 0 } },
		});
		// One server for every seed; each seed's faults hit only its own database.
		api.setFaultHook((request) => {
			const uuid = /\/d1\/database\/([^/]+)\//.exec(request.path)?.[1];
			return uuid === undefined ? undefined : hooks.get(uuid)?.(request);
		});
	});
	afterAll(async () => {
		await api?.close();
		console.log(
			`fault runs: ${stats.runs}, faults injected: ${stats.faults}, runs that exited 1: ${stats.failedRuns}, migrations applied during faulted runs: ${stats.appliedInFaultedRun}, outcomes reported unknown: ${stats.unknownOutcomes}`,
		);
	});

	async function runSeed(seed: number): Promise<string[]> {
		const p = createMigrateProject({
			api,
			token,
			migrations: FILES,
			env: { WORKERS_PIPELINE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
		});
		const problems: string[] = [];
		try {
			const rate = 0.08 + seededRandom(seed * 7919 + 1)() * 0.27;
			const random = randomFaultHook({
				seed,
				rate,
				faults: FAULTS,
				match: (r) => r.method === "POST" && r.path.endsWith("/query"),
			});
			let injected = 0;
			hooks.set(p.uuid, (request) => {
				const fault = random(request);
				if (fault) injected++;
				return fault;
			});
			const faulted = await p.cli(["migrate", "--env", ENV, "--lock-timeout", "30"]);
			hooks.delete(p.uuid);
			stats.runs++;
			stats.faults += injected;
			if (faulted.code !== 0) stats.failedRuns++;
			const tag = `exit ${faulted.code} at rate ${rate.toFixed(2)}`;
			problems.push(...checkConsistency(p).map((m) => `${tag}: ${m}`));
			const applied = ledgerNames(p.db());
			stats.appliedInFaultedRun += applied.length;
			if (faulted.code === 0 && applied.length !== NAMES.length)
				problems.push(`${tag}: exit 0 but only ${applied.length} migration(s) are applied`);
			if (faulted.code !== 0 && faulted.code !== 1)
				problems.push(`${tag}: exit code must be 0 or 1 under faults: ${faulted.stderr}`);
			// The report must tell the truth about each migration it claims to know; only an
			// outcome it declares unknown (APPLY_OUTCOME_UNKNOWN) may go either way.
			let report: JsonReport | undefined;
			try {
				report = p.report("migrate");
			} catch {
				// A run that ended in an exception leaves no report; stderr says why.
				if (faulted.code === 0) problems.push(`${tag}: exit 0 without a report`);
			}
			const unknown = new Set(
				report?.findings
					.filter((f) => f.code === "APPLY_OUTCOME_UNKNOWN")
					.map((f) => path.basename(f.file ?? "")),
			);
			stats.unknownOutcomes += unknown.size;
			for (const row of report?.migrations ?? []) {
				const isApplied = applied.includes(row.name);
				if (["applied", "verified", "recorded"].includes(row.status) && !isApplied)
					problems.push(
						`${tag}: the report says ${row.name} is ${row.status}, the ledger lacks it`,
					);
				if (
					["pending", "not-run", "failed"].includes(row.status) &&
					isApplied &&
					!unknown.has(row.name)
				)
					problems.push(
						`${tag}: the report says ${row.name} is ${row.status}, yet it is applied (${row.note ?? "no note"})`,
					);
			}

			const clean = await p.cli(["migrate", "--env", ENV, "--lock-timeout", "30"]);
			if (clean.code !== 0)
				problems.push(`clean follow-up run exited ${clean.code}: ${clean.stdout}${clean.stderr}`);
			problems.push(...checkConsistency(p).map((m) => `after the clean run: ${m}`));
			if (ledgerNames(p.db()).length !== NAMES.length)
				problems.push(`after the clean run only ${ledgerNames(p.db()).length} are applied`);
			try {
				p.assertNoTokenLeak();
			} catch (error) {
				problems.push((error as Error).message);
			}
		} catch (error) {
			problems.push(`threw: ${(error as Error).stack}`);
		} finally {
			hooks.delete(p.uuid);
			p.dispose();
		}
		return problems.map((m) => `seed ${seed}: ${m}`);
	}

	it("keeps the ledger and the schema consistent, then a clean run finishes", async () => {
		const seeds = seedsToRun();
		const failures: string[] = [];
		// Seeds run concurrently (each on its own database): the faults' waits overlap.
		const queue = [...seeds];
		const worker = async () => {
			for (let seed = queue.shift(); seed !== undefined; seed = queue.shift())
				failures.push(...(await runSeed(seed)));
		};
		await Promise.all(Array.from({ length: 12 }, worker));
		expect(failures, failures.join("\n")).toEqual([]);
		expect(stats.runs).toBe(seeds.length);
		// The faults really happened and really broke runs, or this test proves nothing.
		if (seeds.length >= 50) {
			expect(stats.faults).toBeGreaterThan(seeds.length);
			expect(stats.failedRuns).toBeGreaterThan(0);
			expect(stats.appliedInFaultedRun).toBeGreaterThan(0);
		}
	});
});
