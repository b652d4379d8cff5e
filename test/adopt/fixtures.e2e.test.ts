import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { applyEdits, modify, parse as parseJsonc } from "jsonc-parser";
import { parse as parseToml } from "smol-toml";
import { afterAll, describe, expect, it } from "vitest";
import { loadProjectConfig } from "../../ci/config/load.ts";
import { healthUrlKey } from "../../ci/steps/deploy.ts";
import { packageExports } from "../../ci/steps/init.ts";
import { freePort } from "../app/_app.ts";
import { type EdgeApp, startEdge } from "../deploy/_edge.ts";
import { startCloudflareApi } from "../support/cloudflare-api.ts";
import {
	FIXTURES,
	type FixtureCopy,
	freshCopy,
	type LocalWorkers,
	localWorkers,
	type Manager,
	type Run,
	readmeQuickstart,
	runAsync,
} from "./_fixture.ts";

// init's health route (deploy.healthPath's default).
const HEALTH_PATH = "/api/health";

// Each fixture app, from a clean copy with the packed workers-pipeline installed by the app's own
// package manager: init, then lint, migration-test, build and ci all green on the FIRST run; then
// plan, migrate and deploy with the installed CLI against the loopback Cloudflare API.
interface JsonReport {
	ok: boolean;
	steps: {
		name: string;
		ok: boolean;
		skipped?: boolean;
		summary: string;
		data?: Record<string, unknown>;
	}[];
	findings: { step: string; code: string; acknowledged?: string; message: string }[];
}

const json = (result: Run): JsonReport => {
	try {
		return JSON.parse(result.stdout) as JsonReport;
	} catch {
		throw new Error(`not a JSON report (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
	}
};

const open: FixtureCopy[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
	for (const copy of open.splice(0)) copy.release();
	for (const cleanup of cleanups.splice(0)) await cleanup();
});

const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";

/**
 * A loopback Cloudflare API with one D1 database, and the env the installed CLI and the app's own
 * wrangler need to reach it (their config and logs in a throwaway home).
 */
async function loopback(databaseName: string) {
	const token = `tok-${randomUUID()}`;
	const database = { uuid: randomUUID(), name: databaseName };
	const unknownRoutes: string[] = [];
	const api = await startCloudflareApi({
		token,
		accountId: ACCOUNT_ID,
		databases: [database],
		log: (line) => unknownRoutes.push(line),
	});
	const home = mkdtempSync(path.join(tmpdir(), "wp-adopt-home-"));
	cleanups.push(async () => {
		await api.close();
		rmSync(home, { recursive: true, force: true });
	});
	const env = {
		HOME: home,
		XDG_CONFIG_HOME: path.join(home, ".config"),
		WRANGLER_LOG_PATH: path.join(home, "wrangler-logs"),
		CLOUDFLARE_API_BASE_URL: api.url,
		CLOUDFLARE_API_TOKEN: token,
		CLOUDFLARE_ACCOUNT_ID: ACCOUNT_ID,
		NO_COLOR: "1",
	};
	const ledger = (): string[] => {
		const db = api.database(database.uuid);
		const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'd1_migrations'").get();
		return exists
			? (db.prepare("SELECT name FROM d1_migrations ORDER BY id").pluck().all() as string[])
			: [];
	};
	return { api, database, env, ledger, unknownRoutes, token };
}

/** The report a remote command wrote (remote commands write one on every path). */
const written = (copy: FixtureCopy, command: string): JsonReport =>
	JSON.parse(readFileSync(path.join(copy.dir, ".reports", `${command}.json`), "utf8"));

function green(copy: FixtureCopy, args: string[]): JsonReport {
	const result = copy.cli([...args, "--json"]);
	const report = json(result);
	const unacknowledged = report.findings.filter((f) => !f.acknowledged);
	expect(unacknowledged, `${args.join(" ")}: ${result.stderr}`).toEqual([]);
	expect(result.code).toBe(0);
	return report;
}

/** The README's quickstart, command by command: init, commit what it wrote, then every check once. */
function adopt(
	name: string,
	pm: Manager,
	before?: (copy: FixtureCopy) => void,
	afterInit?: (copy: FixtureCopy) => void,
) {
	const copy = freshCopy(name, pm);
	open.push(copy);
	before?.(copy);
	const commands = readmeQuickstart();
	expect(commands.map((argv) => argv[0])).toEqual([
		"init",
		"lint",
		"migration-test",
		"build",
		"ci",
	]);
	const [initArgs, ...checks] = commands as [string[], ...string[][]];
	const init = copy.cli(initArgs);
	expect(init.code, init.stdout + init.stderr).toBe(0);
	afterInit?.(copy);
	expect(copy.git("add", "-A").code).toBe(0);
	expect(copy.git("commit", "-qm", "Adopt workers-pipeline").code).toBe(0);
	const reports = Object.fromEntries(checks.map((argv) => [argv[0], green(copy, argv)]));
	const steps = {
		init: init.stdout,
		lint: reports.lint as JsonReport,
		migrationTest: reports["migration-test"] as JsonReport,
		build: reports.build as JsonReport,
		ci: reports.ci as JsonReport,
	};
	return { copy, steps };
}

const step = (report: JsonReport, name: string) => report.steps.find((s) => s.name === name);

// wrangler.toml support comes with the packaging work (ci/config/load.ts): until this checkout
// reads it, the Hono fixture is skipped, saying so.
const readsToml = (() => {
	try {
		loadProjectConfig({ cwd: path.join(FIXTURES, "hono-toml") });
		return true;
	} catch (error) {
		console.info(
			`hono-toml fixture skipped: this checkout cannot read wrangler.toml yet (${(error as Error).message.split("\n")[0]})`,
		);
		return false;
	}
})();

/** Where a fixture deploys: its environment, that environment's Worker and database, its config file. */
interface Target {
	/** undefined: the top-level Worker, as wrangler without --env. */
	env?: string;
	worker: string;
	database: string;
	/** The committed database_id of that environment, replaced in the copy by the loopback's. */
	databaseId: string;
	config: "wrangler.toml" | "wrangler.jsonc";
	migrations: string[];
}

const envFlag = (target: Target) => (target.env ? ["--env", target.env] : []);

/** The app's wrangler, as installed in the copy (npm and pnpm both link node_modules/wrangler). */
const wranglerOf = (copy: FixtureCopy) => [
	process.execPath,
	path.join(copy.dir, "node_modules/wrangler/bin/wrangler.js"),
];

/**
 * The loopback API with the target's database, and the edge stand-in (test/deploy/_edge.ts) in
 * front of it: each deployed version served by the copy's own `wrangler dev` with that version's
 * vars, on a local D1 migrated like the remote. `prepare` points the copy at both before init commits.
 */
async function remoteFor(target: Target) {
	const remote = await loopback(target.database);
	const persistDir = mkdtempSync(path.join(tmpdir(), "wp-adopt-d1-"));
	let workers: LocalWorkers | undefined;
	const app: EdgeApp = {
		dir: "",
		start: (options) => {
			workers ??= localWorkers({
				dir: app.dir,
				env: remote.env,
				persistDir,
				readyPath: HEALTH_PATH,
				freePort,
			});
			return workers.start(options);
		},
	};
	// wrangler's own resolution of an environment: its keys over the top-level ones, `env` dropped.
	const config = () => {
		const text = readFileSync(path.join(app.dir, target.config), "utf8");
		const { env: envs, ...top } = (
			target.config === "wrangler.toml" ? parseToml(text) : parseJsonc(text)
		) as Record<string, unknown>;
		const named = target.env ? (envs as Record<string, Record<string, unknown>>)[target.env] : {};
		return { ...top, ...named };
	};
	const edge = await startEdge({ api: remote.api, script: target.worker, app, config });
	cleanups.push(async () => {
		await edge.close();
		await workers?.stopAll();
		rmSync(persistDir, { recursive: true, force: true });
	});
	return {
		...remote,
		edge,
		/** Before init: the environment's database is the loopback's (in the copy only). */
		useDatabase(copy: FixtureCopy) {
			app.dir = copy.dir;
			const file = path.join(copy.dir, target.config);
			const text = readFileSync(file, "utf8");
			const pointed = text.replace(target.databaseId, remote.database.uuid);
			expect(pointed).not.toBe(text);
			writeFileSync(file, pointed);
		},
		/** After init, committed with it: the loopback runs no code, so health goes to the edge. */
		useEdge(copy: FixtureCopy) {
			const file = path.join(copy.dir, "workers-pipeline.jsonc");
			const text = readFileSync(file, "utf8");
			const url = `${edge.url}${HEALTH_PATH}`;
			// Keyed by environment; "default" for the top-level Worker (deploy without --env).
			const key = healthUrlKey(target.env);
			writeFileSync(file, applyEdits(text, modify(text, ["deploy", "healthUrls", key], url, {})));
		},
		/** The local D1 the served versions read, migrated by the app's wrangler (as migrate did the remote). */
		migrateLocal: (copy: FixtureCopy) =>
			runAsync(
				[
					...wranglerOf(copy),
					...["d1", "migrations", "apply", "DB", "--local", ...envFlag(target)],
					...["--persist-to", persistDir],
				],
				copy.dir,
				remote.env,
			),
	};
}

/**
 * After a green ci, with the installed CLI: plan lists every migration as pending, migrate applies
 * them (the app's wrangler agrees), a second migrate has nothing to apply. Returns the outputs.
 */
async function remoteMigrations(
	copy: FixtureCopy,
	remote: Awaited<ReturnType<typeof remoteFor>>,
	target: Target,
): Promise<string[]> {
	const { migrations } = target;
	const outputs: string[] = [];
	const cli = async (args: string[]) => {
		const result = await copy.cliAsync([...args, ...envFlag(target), "--json"], remote.env);
		outputs.push(result.stdout, result.stderr);
		return { result, report: json(result) };
	};
	const pendingOf = (report: JsonReport) =>
		((report.steps[0]?.data?.migrations ?? []) as { name: string; status: string }[])
			.filter((m) => m.status === "pending")
			.map((m) => m.name);

	const plan = await cli(["plan"]);
	expect(plan.result.code, plan.result.stderr).toBe(0);
	expect(step(plan.report, "plan")?.data?.database).toMatchObject({ id: remote.database.uuid });
	expect(pendingOf(plan.report)).toEqual(migrations);
	expect(remote.ledger()).toEqual([]);

	const migrate = await cli(["migrate"]);
	expect(migrate.result.code, migrate.result.stderr).toBe(0);
	expect(step(migrate.report, "migrate")?.summary).toMatch(
		new RegExp(`^applied ${migrations.length} migration\\(s\\); schema validated`),
	);
	expect(remote.ledger()).toEqual(migrations);
	// The app's own wrangler reads the same ledger and finds nothing left.
	const listed = await runAsync(
		[...wranglerOf(copy), "d1", "migrations", "list", "DB", "--remote", ...envFlag(target)],
		copy.dir,
		remote.env,
	);
	expect(listed.code, listed.stderr).toBe(0);
	expect(listed.stdout).toContain("No migrations to apply");

	const again = await cli(["migrate"]);
	expect(again.result.code, again.result.stderr).toBe(0);
	expect(step(again.report, "migrate")?.summary).toBe(
		`nothing to apply: ${migrations.length} migration(s) applied, all verified`,
	);
	expect(written(copy, "migrate").ok).toBe(true);
	expect(remote.ledger()).toEqual(migrations);

	return outputs;
}

/**
 * After a green ci, with the installed CLI: plan, migrate twice, then deploy uploads a version whose
 * health probes reach it through the edge.
 */
async function remotePart(
	copy: FixtureCopy,
	remote: Awaited<ReturnType<typeof remoteFor>>,
	target: Target,
	deployFlags: string[],
) {
	const outputs = await remoteMigrations(copy, remote, target);
	const cli = async (args: string[]) => {
		const result = await copy.cliAsync([...args, ...envFlag(target), "--json"], remote.env);
		outputs.push(result.stdout, result.stderr);
		return { result, report: json(result) };
	};
	const { migrations } = target;
	const local = await remote.migrateLocal(copy);
	expect(local.code, local.stdout + local.stderr).toBe(0);
	const deploy = await cli(["deploy", ...deployFlags]);
	const versions = remote.api.workers.versions(target.worker);
	expect(versions, deploy.result.stdout + deploy.result.stderr).toHaveLength(1);
	const versionId = versions[0]?.id;
	expect(step(deploy.report, "deploy")?.data).toMatchObject({
		versionId,
		expectedHead: migrations.at(-1),
		healthUrl: `${remote.edge.url}${HEALTH_PATH}`,
	});
	expect(versions[0]?.bindings).toContainEqual({
		name: "WORKERS_PIPELINE_EXPECTED_HEAD",
		type: "plain_text",
		text: migrations.at(-1),
	});
	// The health probes reached the new version itself, through the edge stand-in.
	expect(remote.edge.hits.filter((h) => h.versionId === versionId).length).toBeGreaterThan(0);
	for (const text of outputs) expect(text).not.toContain(remote.token);
	expect(remote.unknownRoutes).toEqual([]);
	return { deploy, versionId };
}

/** deploy exited 0: the new version is live and its health held with the head migration applied. */
function expectHealthyDeploy(
	{ deploy, versionId }: Awaited<ReturnType<typeof remotePart>>,
	remote: Awaited<ReturnType<typeof remoteFor>>,
	target: Target,
	data: Record<string, unknown> = {},
) {
	expect(deploy.result.code, deploy.result.stdout + deploy.result.stderr).toBe(0);
	expect(remote.api.workers.liveVersion(target.worker)).toBe(versionId);
	const head = target.migrations.at(-1);
	expect(step(deploy.report, "deploy")).toMatchObject({
		ok: true,
		summary: expect.stringMatching(/; health holds$/),
		data: {
			...data,
			health: {
				ok: true,
				lastStatus: 200,
				lastBody: { status: "ok", version: versionId, schema: { head, expected: head } },
			},
		},
	});
}

const sqlFiles = (dir: string) =>
	readdirSync(path.join(FIXTURES, dir))
		.filter((f) => f.endsWith(".sql"))
		.sort();

describe("adopting workers-pipeline on fixture apps (packed tarball, own package manager)", () => {
	it("a Vite-built Worker on pnpm with build.command: green on the first run; then plan, migrate and deploy, which names the missing health route", async () => {
		const target: Target = {
			env: "staging",
			worker: "fixture-vite-app-staging",
			database: "fixture-vite-db-staging",
			databaseId: "00000000-0000-4000-8000-000000000005",
			config: "wrangler.jsonc",
			migrations: sqlFiles("vite-app/migrations"),
		};
		expect(target.migrations).toHaveLength(2);
		const remote = await remoteFor(target);
		const { copy, steps } = adopt("vite-app", "pnpm", remote.useDatabase, remote.useEdge);
		expect(steps.init).toMatch(/kept\s+workers-pipeline\.jsonc/);
		expect(copy.read("wrangler.jsonc")).toContain('"binding": "CF_VERSION_METADATA"');
		expect(copy.read("wrangler.jsonc")).toContain("// Built by `vite build`");
		expect(step(steps.lint, "lint")?.summary).toMatch(
			/typecheck \((npx --yes )?pnpm(@[\d.]+)? run typecheck\) ok/,
		);
		expect(step(steps.build, "build")?.summary).toMatch(
			/with vite build \(build\.command\) into dist\//,
		);
		expect(existsSync(path.join(copy.dir, "dist/worker.js"))).toBe(true);
		expect(step(steps.ci, "test")?.summary).toMatch(/run test: ok \(1 passed, 0 failed\)/);
		// The build of the committed tree is reused by ci, stamped with the clean sha.
		expect(step(steps.ci, "build")?.summary).toMatch(/^up to date/);

		// A plain Worker gets no health route from init: the new version answers /api/health with its
		// catch-all page, and deploy says what to add instead of calling that healthy.
		expect(steps.init).toContain("Health route:");
		// It says so as soon as the same page has come back for longer than propagation takes,
		// not after the whole --health-timeout.
		const { deploy, versionId } = await remotePart(copy, remote, target, [
			...["--health-timeout", "180", "--health-window", "1"],
		]);
		expect(deploy.result.code).toBe(1);
		const noRoute = deploy.report.findings.find((f) => f.code === "HEALTH_NO_ROUTE");
		expect(noRoute?.message).toMatch(
			new RegExp(
				`did not report a healthy ${versionId}: the same answer \\d+ times in a row over [\\d.]+ s: HTTP 200 without the health contract's JSON`,
			),
		);
		expect(noRoute?.message).not.toContain("timed out");
		expect(noRoute?.message).toContain("add the health route of workers-pipeline/health");
		expect(step(deploy.report, "deploy")?.data?.health).toMatchObject({
			ok: false,
			noRoute: true,
			lastStatus: 200,
		});
		// A first deploy has nothing to roll back to: the version stays live, and deploy says so.
		expect(deploy.report.findings.map((f) => f.code)).toContain("ROLLBACK_IMPOSSIBLE");
		expect(remote.api.workers.liveVersion(target.worker)).toBe(versionId);
	}, 240_000);

	it.skipIf(!readsToml)(
		"a Hono Worker with wrangler.toml on npm, flat drizzle-kit history with an applied cascading rebuild; then plan, migrate and deploy against the loopback API",
		async () => {
			const target: Target = {
				env: "production",
				worker: "fixture-hono-api-production",
				database: "fixture-hono-db-production",
				databaseId: "00000000-0000-4000-8000-000000000002",
				config: "wrangler.toml",
				migrations: sqlFiles("hono-toml/drizzle"),
			};
			expect(target.migrations).toHaveLength(3);
			const remote = await remoteFor(target);
			const { copy, steps } = adopt("hono-toml", "npm", remote.useDatabase, remote.useEdge);
			const settings = copy.read("workers-pipeline.jsonc");
			expect(settings).toContain('"naming": "drizzle-kit"');
			for (const code of ["D1_FOREIGN_KEYS_OFF", "REPLAY_DROP_CASCADE"])
				expect(settings).toContain(code);
			expect(copy.read("wrangler.toml")).toMatch(
				/\[version_metadata\]\nbinding = "CF_VERSION_METADATA"/,
			);
			expect(copy.read("wrangler.toml")).toContain("[env.production.version_metadata]");
			expect(step(steps.lint, "lint")?.summary).toContain("lint skipped (no lint script");
			expect(step(steps.ci, "test")).toMatchObject({ ok: true, skipped: true });
			expect(step(steps.build, "build")?.summary).toContain("(wrangler bundle)");
			expect(
				steps.migrationTest.findings.some(
					(f) => f.code === "REPLAY_DROP_CASCADE" && f.acknowledged,
				),
			).toBe(true);
			// The health route init wrote answers for the new version, with the head deploy passed.
			const deployed = await remotePart(copy, remote, target, [
				...["--health-timeout", "60", "--health-window", "1"],
			]);
			expectHealthyDeploy(deployed, remote, target);
		},
		240_000,
	);

	it("a Next.js + OpenNext app on pnpm with ESLint and drizzle-kit v1 directories, no env block; then plan, migrate and deploy the top-level Worker on the loopback", async () => {
		const target: Target = {
			worker: "fixture-next-saas",
			database: "fixture-next-saas",
			databaseId: "00000000-0000-4000-8000-000000000003",
			config: "wrangler.jsonc",
			migrations: readdirSync(path.join(FIXTURES, "next-pnpm/src/db/migrations"))
				.sort()
				.map((dir) => `${dir}/migration.sql`),
		};
		const remote = await remoteFor(target);
		const { copy, steps } = adopt(
			"next-pnpm",
			"pnpm",
			(fresh) => {
				remote.useDatabase(fresh);
				// A fresh clone has no generated route types: a bare tsc is red, so lint must generate first.
				const tsc = fresh.exec(["tsc", "--noEmit", "-p", "tsconfig.json"]);
				expect(tsc.code).not.toBe(0);
				expect(tsc.stdout).toContain("Cannot find name 'PageProps'");
			},
			remote.useEdge,
		);
		expect(copy.read("workers-pipeline.jsonc")).toContain('"naming": "drizzle-kit-v1"');
		expect(step(steps.lint, "lint")?.summary).toMatch(
			/lint \((npx --yes )?pnpm(@[\d.]+)? run lint\) ok/,
		);
		expect(step(steps.lint, "lint")?.summary).toContain("after next typegen ok");
		expect(existsSync(path.join(copy.dir, ".open-next/worker.js"))).toBe(true);
		expect(step(steps.ci, "build")?.summary).toMatch(/^up to date/);
		expect(packageExports(copy.dir, "./health/next")).toBeTruthy();
		expect(copy.read("src/app/api/health/route.ts")).toContain("createNextHealthRoute");

		// No env block: plan and migrate work on the top-level database, and deploy uploads the build
		// ci made to the top-level Worker, as wrangler without --env; the edge serves it from
		// .open-next/ with the app's own wrangler, and the route init wrote reports it healthy.
		const deployed = await remotePart(copy, remote, target, [
			...["--health-timeout", "180", "--health-window", "1"],
		]);
		expectHealthyDeploy(deployed, remote, target, { environment: null, worker: target.worker });
	}, 420_000);
});
