// Remote migrate, side by side against the loopback Cloudflare API: `workers-pipeline migrate`
// (lock, bookmark, fenced atomic requests with ledger rows, validation: every guarantee on) vs
// `wrangler d1 migrations apply --remote`, each as a real process on its own fresh database.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import {
	ACCOUNT_ID,
	createMigrateProject,
	ENV,
	ledgerNames,
	type MigrateProject,
	newToken,
	type ProcessRun,
} from "../ci/migrate/_support.ts";
import { type CloudflareApi, startCloudflareApi } from "../support/cloudflare-api.ts";
import { generateMigrations } from "./generate.ts";

const COUNT = 20;
const ROUNDS = 3;

const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)] as number;
};
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

interface Sample {
	ms: number;
	/** Requests naming this database (query, bookmark, export…). */
	requests: number;
	/** Every request the API saw during the run (wrangler also asks about the account). */
	allRequests: number;
}

async function measure(
	api: CloudflareApi,
	project: MigrateProject,
	run: () => Promise<ProcessRun>,
	label: string,
): Promise<Sample> {
	const first = api.requests.length;
	const result = await run();
	if (result.code !== 0)
		throw new Error(`${label} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
	const applied = ledgerNames(project.db()).length;
	if (applied !== COUNT) throw new Error(`${label} applied ${applied} of ${COUNT} migrations`);
	const during = api.requests.slice(first);
	return {
		ms: result.durationMs,
		requests: during.filter((r) => r.path.includes(`/${project.uuid}`)).length,
		allRequests: during.length,
	};
}

/** Prints wall time and request counts for both tools and their ratio (target: ours <= wrangler). */
export async function benchMigrate(): Promise<void> {
	const token = newToken();
	const api = await startCloudflareApi({ token, accountId: ACCOUNT_ID });
	const generated = mkdtempSync(path.join(tmpdir(), "wp-bench-migrate-"));
	const projects: MigrateProject[] = [];
	try {
		generateMigrations(generated, COUNT);
		const files = Object.fromEntries(
			readdirSync(generated).map((f) => [f, readFileSync(path.join(generated, f), "utf8")]),
		);
		const ours: Sample[] = [];
		const theirs: Sample[] = [];
		for (let round = 0; round < ROUNDS; round++) {
			const a = createMigrateProject({ api, token, migrations: files });
			const b = createMigrateProject({ api, token, migrations: files });
			projects.push(a, b);
			// Alternate who goes first, so neither always gets the warmer machine.
			const runOurs = async () =>
				ours.push(await measure(api, a, () => a.bin(["migrate", "--env", ENV]), "ours"));
			const runTheirs = async () =>
				theirs.push(
					await measure(
						api,
						b,
						() => b.wrangler(["d1", "migrations", "apply", "DB", "--remote", "--env", ENV]),
						"wrangler",
					),
				);
			if (round % 2 === 0) {
				await runOurs();
				await runTheirs();
			} else {
				await runTheirs();
				await runOurs();
			}
			for (const p of [a, b]) p.assertNoTokenLeak();
		}
		const oursMs = median(ours.map((s) => s.ms));
		const theirsMs = median(theirs.map((s) => s.ms));
		const oursRequests = median(ours.map((s) => s.requests));
		const theirsRequests = median(theirs.map((s) => s.requests));
		console.log(
			`remote migrate of ${COUNT} generated migrations, loopback Cloudflare API, real processes (median of ${ROUNDS} rounds)`,
		);
		console.log(
			`  ours: workers-pipeline migrate --env ${ENV}:            ${fmt(oursMs).padStart(8)}  ${oursRequests} requests to the database (${median(ours.map((s) => s.allRequests))} in all)`,
		);
		console.log(
			`  wrangler d1 migrations apply DB --remote --env ${ENV}: ${fmt(theirsMs).padStart(8)}  ${theirsRequests} requests to the database (${median(theirs.map((s) => s.allRequests))} in all)`,
		);
		console.log(
			`  ours / wrangler: time ${(oursMs / theirsMs).toFixed(2)}x (target <= 0.6x); requests ${oursRequests} for ${COUNT} pending (target <= pending + 3 = ${COUNT + 3}; wrangler ${theirsRequests})`,
		);
	} finally {
		for (const p of projects) p.dispose();
		rmSync(generated, { recursive: true, force: true });
		await api.close();
	}
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
	await benchMigrate();
}
