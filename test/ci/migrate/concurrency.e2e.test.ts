// Real `migrate` processes racing for one database, and one killed mid-run: the lock lets exactly
// one apply, the others wait or give up naming the holder, and a dead run's lock is taken over
// once its lease expires, leaving a ledger where every migration is recorded exactly once.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { checksumOf } from "../../../ci/migrations/catalog.ts";
import { recordSql } from "../../../ci/migrations/ledger.ts";
import { type CloudflareApi, startCloudflareApi } from "../../support/cloudflare-api.ts";
import {
	ACCOUNT_ID,
	apiEnv,
	auditNames,
	cli,
	ledgerNames,
	lockRows,
	MIGRATIONS_DIR,
	makeProject,
	removeProjects,
	type Spawned,
	STACK_LINE,
	spawnCli,
	stopSpawned,
	TOKEN,
	writeFiles,
} from "./_inputs.ts";

const SEVEN = readdirSync(MIGRATIONS_DIR)
	.filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
	.sort()
	.slice(0, 7);
const MIGRATE = ["migrate", "--env", "staging"];
/** The request that applies one migration: its SQL plus wrangler's ledger INSERT. */
function isApply(body: string | undefined): boolean {
	if (body === undefined) return false;
	const { sql } = JSON.parse(body) as { sql?: string };
	return sql?.includes('INSERT INTO "d1_migrations" (name)') ?? false;
}

let api: CloudflareApi;

beforeAll(async () => {
	api = await startCloudflareApi({ token: TOKEN, accountId: ACCOUNT_ID });
});

afterEach(() => {
	stopSpawned();
	api.faults.clear();
	removeProjects();
});

afterAll(async () => {
	stopSpawned();
	await api?.close();
	removeProjects();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(25);
	}
}

/** Every migration recorded exactly once, in order, with the file's checksum; the lock free. */
function expectConsistentLedger(uuid: string, dir: string): void {
	const names = ledgerNames(api, uuid);
	expect(names).toEqual(SEVEN);
	expect(new Set(names).size).toBe(7);
	expect(auditNames(api, uuid)).toEqual([...SEVEN].sort());
	const audit = api
		.database(uuid)
		.prepare("SELECT name, checksum FROM workers_pipeline_migrations")
		.all() as { name: string; checksum: string }[];
	for (const row of audit) {
		const text = readFileSync(path.join(dir, "migrations", row.name), "utf8");
		expect(row.checksum, row.name).toBe(checksumOf(text));
	}
	expect(lockRows(api, uuid)).toEqual([]);
}

describe("migrate processes racing for one database", () => {
	it("has seven example migrations to apply", () => {
		expect(SEVEN).toHaveLength(7);
	});

	it("lets exactly one of 8 concurrent runs apply; the others wait or name the holder", async () => {
		const project = makeProject(api, { migrations: SEVEN });
		// Each apply request is slowed so the winner holds the lock well past the short timeout.
		api.setFaultHook((request) =>
			isApply(request.body) ? { kind: "delay", ms: 1000 } : undefined,
		);
		const env = apiEnv(api);
		const runs: (Spawned & { patient: boolean })[] = [];
		for (let i = 0; i < 8; i++) {
			const patient = i % 2 === 0;
			const timeout = patient ? ["--lock-timeout", "120"] : ["--lock-timeout", "1"];
			runs.push({ ...spawnCli([...MIGRATE, ...timeout], project.dir, env), patient });
		}
		const results = await Promise.all(
			runs.map(async (r) => ({ pid: r.pid, patient: r.patient, ...(await r.done) })),
		);
		const transcript = results
			.map(
				(r) =>
					`pid ${r.pid} (${r.patient ? "patient" : "impatient"}) exit ${r.code}:\n${r.stdout}${r.stderr}`,
			)
			.join("\n---\n");

		for (const r of results) {
			expect(r.stdout + r.stderr, transcript).not.toMatch(STACK_LINE);
			expect([0, 1], transcript).toContain(r.code);
		}
		const winners = results.filter((r) => /applied [1-9]\d* migration\(s\)/.test(r.stdout));
		expect(winners, transcript).toHaveLength(1);
		const [winner] = winners as [(typeof results)[number]];
		expect(winner.code).toBe(0);
		expect(winner.stdout).toMatch(/applied 7 migration\(s\); schema validated/);

		const holder = new RegExp(
			`LOCK_HELD: the migration lock is held by migrate-inputs@\\S+ pid ${winner.pid} \\(run [0-9a-f-]+, expires in \\d+ s\\)`,
		);
		const nothing = /nothing to apply/;
		for (const r of results.filter((x) => x !== winner)) {
			if (r.code === 0) expect(r.stdout, transcript).toMatch(nothing);
			else {
				expect(r.patient, transcript).toBe(false);
				expect(r.stdout, transcript).toMatch(holder);
				expect(r.stdout).toContain("lock held by another run: nothing was applied");
			}
		}
		// Both behaviours were seen: an impatient run gave up, a patient one waited it out.
		expect(results.filter((r) => r.code === 1).length, transcript).toBeGreaterThan(0);
		expect(
			results.filter((r) =>
				r.stdout.includes(
					"nothing to apply (another run applied everything while this one waited)",
				),
			).length,
			transcript,
		).toBeGreaterThan(0);

		expectConsistentLedger(project.uuid, project.dir);
		// Every migration went out as exactly one apply request.
		const applies = api.requests.filter((r) => r.path.includes(project.uuid) && isApply(r.body));
		expect(applies).toHaveLength(7);
	});

	it("takes over the lock of a run killed mid-apply once its lease expires", async () => {
		const project = makeProject(api, { migrations: SEVEN });
		const env = apiEnv(api);
		const sentBefore = api.requests.length;
		api.setFaultHook((request) =>
			request.path.endsWith("/query") ? { kind: "delay", ms: 600 } : undefined,
		);
		const victim = spawnCli([...MIGRATE, "--lock-ttl", "2"], project.dir, env);
		await waitFor("the first migration request", () =>
			api.requests.slice(sentBefore).some((r) => isApply(r.body)),
		);
		process.kill(victim.pid, "SIGKILL");
		const killed = await victim.done;
		expect(killed.signal).toBe("SIGKILL");
		api.setFaultHook(undefined);
		// Let the server finish the request that was in flight when the client died.
		await waitFor("the in-flight request", () =>
			api.requests.slice(sentBefore).every((r) => r.status !== 0),
		);

		const [lock] = lockRows(api, project.uuid);
		expect(lock?.owner).toMatch(new RegExp(`pid ${victim.pid}$`));
		const appliedByVictim = ledgerNames(api, project.uuid);
		expect(appliedByVictim.length).toBeLessThan(7);
		expect(appliedByVictim).toEqual(SEVEN.slice(0, appliedByVictim.length));
		const run = api
			.database(project.uuid)
			.prepare("SELECT status FROM workers_pipeline_runs WHERE run_id = ?")
			.get(lock?.run_id) as { status: string } | undefined;
		expect(run?.status).toBe("running");

		const next = spawnCli([...MIGRATE, "--lock-timeout", "60"], project.dir, env);
		const result = await next.done;
		const output = result.stdout + result.stderr;
		expect(result.code, output).toBe(0);
		expect(result.stdout).toMatch(
			new RegExp(
				`warning LOCK_TAKEN_OVER: took over a stale migration lock from migrate-inputs@\\S+ pid ${victim.pid} \\(run ${lock?.run_id}\\)`,
			),
		);
		expect(result.stdout).toContain(
			`applied ${7 - appliedByVictim.length} migration(s); schema validated`,
		);
		expect(output).not.toMatch(STACK_LINE);
		expectConsistentLedger(project.uuid, project.dir);
	});

	it("does not mistake a migration another run applies between its two reads for drift", async () => {
		const project = makeProject(api, { migrations: SEVEN.slice(0, 4) });
		const env = apiEnv(api);
		const seed = await cli(MIGRATE, project.dir, env);
		expect(seed.code, seed.stdout).toBe(0);
		const rest = Object.fromEntries(
			SEVEN.slice(4).map((name) => [
				`migrations/${name}`,
				readFileSync(path.join(MIGRATIONS_DIR, name), "utf8"),
			]),
		);
		writeFiles(project.dir, rest);
		// Another run applies the fifth migration (with its ledger rows, atomically) just after this
		// run read the schema and just before its ledger read arrives.
		const [fifth] = SEVEN.slice(4) as [string];
		const text = readFileSync(path.join(MIGRATIONS_DIR, fifth), "utf8");
		let interleaved = false;
		api.setFaultHook((request) => {
			const sql = request.body ? (JSON.parse(request.body) as { sql?: string }).sql : undefined;
			if (interleaved || !sql?.includes("SELECT id, name, applied_at")) return undefined;
			interleaved = true;
			const record = recordSql(
				"d1_migrations",
				{
					name: fifth,
					checksum: checksumOf(text),
					gitSha: null,
					appliedBy: "another run",
					durationMs: null,
					bookmark: null,
					runId: "another-run",
					recordedBy: "migrate",
				},
				{ wrangler: true },
			);
			api.database(project.uuid).exec(`BEGIN;\n${text}\n${record}\nCOMMIT;`);
			return undefined;
		});
		const run = await cli(MIGRATE, project.dir, env);
		expect(interleaved).toBe(true);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		expect(run.stdout).not.toContain("PREFLIGHT_SCHEMA_DRIFT");
		expect(run.stdout).toContain("applied 2 migration(s); schema validated");
		expectConsistentLedger(project.uuid, project.dir);
	});
});
