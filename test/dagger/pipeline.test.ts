// The module's functions EXECUTED by the engine stand-in (test/support/dagger-engine): real
// npm ci, the real CLI, real wrangler/OpenNext inside a node:24 bookworm root, remote calls
// against the loopback Cloudflare API. Heavy on a fresh machine (rootfs + installs, ~10 min once;
// the layer store then makes a rerun take about a minute): runs when WORKERS_PIPELINE_ENGINE=1
// (.ci/run sets it).
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CloudflareApi, startCloudflareApi } from "../support/cloudflare-api.ts";
import {
	type Any,
	callFunction,
	construct,
	installBinding,
	type LoadedModule,
	loadModule,
	loadSdk,
	moduleBinding,
} from "../support/dagger-engine/call.ts";
import { type Engine, engineUnavailable, startEngine } from "../support/dagger-engine/engine.ts";
import { MODULE_SRC, ROOT } from "./support.ts";

const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";
// Made at run time: a literal would sit in this file, which the app source (and its layers) holds.
const TOKEN = `cf-token-${randomUUID()}`;
const STAGING_DB = {
	uuid: "00000000-0000-4000-8000-000000000002",
	name: "workers-pipeline-example-staging",
};
const PRODUCTION_DB = {
	uuid: "00000000-0000-4000-8000-000000000003",
	name: "workers-pipeline-example-production",
};
const unavailable =
	engineUnavailable() ??
	(process.env.WORKERS_PIPELINE_ENGINE ? undefined : "set WORKERS_PIPELINE_ENGINE=1");
const HEAVY = 1_800_000;
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const SCRIPT = "workers-pipeline-example-staging";
const HEALTH_PORT = 47831;

// The repository as a checkout would have it (tracked and untracked, not ignored files).
const copyCheckout = (to: string, healthUrl: string) => {
	const files = spawnSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], {
		cwd: ROOT,
		encoding: "utf8",
	});
	for (const f of files.stdout.split("\0").filter(Boolean)) {
		mkdirSync(join(to, f, ".."), { recursive: true });
		cpSync(join(ROOT, f), join(to, f));
	}
	// This repository is its own example app; its unit suite is the whole test tree, so the app's
	// `test` here is one small suite (the container runs it through the same config path).
	// The loopback API stores versions but runs no code: the health endpoint is the test's own.
	// Written as biome formats it: the app's lint checks its formatting.
	writeFileSync(
		join(to, "workers-pipeline.jsonc"),
		[
			"{",
			'\t"test": {',
			'\t\t"command": ["vitest", "run", "test/ci/steps/secret-names.test.ts"],',
			"\t},",
			'\t"deploy": {',
			'\t\t"healthUrls": {',
			`\t\t\t"staging": "${healthUrl}",`,
			"\t\t},",
			"\t},",
			"}",
			"",
		].join("\n"),
	);
	// Until the packaged lockfile lists every platform's optional packages, npm ci refuses it
	// (see DESIGN.md); the same fix the packaging work commits, applied to the copy only.
	spawnSync(
		"npm",
		["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
		{
			cwd: to,
			stdio: "ignore",
		},
	);
};

// Say why, so a skip is never silent (`npm test` as a user runs it; .ci/run sets the variable).
if (unavailable) console.log(`executed Dagger pipeline tests skipped: ${unavailable}`);

describe.skipIf(unavailable)("the module, executed", () => {
	let context: string;
	let out: string;
	let engine: Engine;
	let api: CloudflareApi;
	let sdk: Any;
	let mod: LoadedModule;
	let consumer: LoadedModule;
	let bookmark: string | undefined;
	let health: Server;

	beforeAll(async () => {
		context = mkdtempSync(join(tmpdir(), "wp-dagger-ctx-"));
		out = mkdtempSync(join(tmpdir(), "wp-dagger-out-"));
		// The deployed app's health route, routed as Cloudflare routes: the version the
		// Cloudflare-Workers-Version-Overrides header names, else the deployment's larger share
		// (developers.cloudflare.com/workers/configuration/versions-and-deployments/gradual-deployments/).
		// It reports that version's id and the expected head deploy passed as its var.
		health = createServer((req, res) => {
			const override = /="([^"]+)"/.exec(
				String(req.headers["cloudflare-workers-version-overrides"] ?? ""),
			)?.[1];
			const live = api.workers.deployments(SCRIPT)[0]?.versions ?? [];
			const id = override ?? [...live].sort((a, b) => b.percentage - a.percentage)[0]?.version_id;
			const version = api.workers.versions(SCRIPT).find((v) => v.id === id);
			const expected = version?.bindings.find((b) => b.name === "WORKERS_PIPELINE_EXPECTED_HEAD")
				?.text as string | undefined;
			res.setHeader("content-type", "application/json");
			res.end(
				JSON.stringify({
					status: "ok",
					version: id ?? null,
					schema: { head: expected ?? null, expected: expected ?? null },
					db: "ok",
				}),
			);
		});
		// A fixed port when free keeps the app source (and every cached layer after it) the same
		// from run to run; any free port otherwise.
		await new Promise<void>((ok) => {
			health.once("error", () => health.listen(0, "127.0.0.1", ok));
			health.listen(HEALTH_PORT, "127.0.0.1", ok);
		});
		const healthPort = (health.address() as AddressInfo).port;
		copyCheckout(context, `http://127.0.0.1:${healthPort}/api/health`);
		api = await startCloudflareApi({
			token: TOKEN,
			accountId: ACCOUNT_ID,
			databases: [STAGING_DB],
			log: () => {},
		});
		engine = await startEngine({
			loopbackPorts: [Number(new URL(api.origin).port), healthPort],
			egressHosts: ["registry.npmjs.org"],
		});
		sdk = await loadSdk(engine);
		mod = await loadModule({
			name: "workers-pipeline",
			src: MODULE_SRC,
			entry: join(MODULE_SRC, "index.ts"),
			context,
			object: "WorkersPipeline",
		});
		const consumerSrc = join(ROOT, "test/fixtures/consumer/src");
		consumer = await loadModule({
			name: "consumer",
			src: consumerSrc,
			entry: join(consumerSrc, "index.ts"),
			context,
			object: "Consumer",
		});
	}, HEAVY);
	afterAll(async () => {
		delete process.env.DAGGER_SESSION_PORT;
		delete process.env.DAGGER_SESSION_TOKEN;
		await engine?.close();
		await api?.close();
		await new Promise((ok) => health?.close(ok));
		for (const d of [context, out]) if (d) rmSync(d, { recursive: true, force: true });
	});

	// One `dagger call`: constructor flags, then a function and its flags.
	const call = async (
		fn: string,
		args: Record<string, unknown> = {},
		ctor: Record<string, unknown> = {},
		then?: (r: Any) => Promise<unknown>,
	) => {
		let result: unknown;
		try {
			await sdk.connection(async () => {
				const instance = construct(sdk, mod, ctor);
				const r = await callFunction(sdk, mod, instance, fn, args);
				result = then ? await then(r) : r;
			});
		} catch (error) {
			// What the exec printed, as `dagger call` shows it.
			const e = error as { stdout?: string; stderr?: string; message: string };
			throw new Error(`${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`.slice(0, 6000), {
				cause: error,
			});
		}
		return result;
	};
	const remote = (extra: Record<string, unknown> = {}) => ({
		cloudflareApiBaseUrl: api.url,
		actor: "octocat",
		runId: "4242",
		repository: "acme/shop",
		...extra,
	});
	const cf = () => ({
		env: "staging",
		cloudflareApiToken: sdk.dag.setSecret("token", TOKEN),
		cloudflareAccountId: ACCOUNT_ID,
	});
	const npmCi = () => engine.stats.execs.filter((e) => e.args[0] === "npm" && e.args[1] === "ci");
	// The pipeline's own installs (npm ci) and the app's (the CLI's `install`, its manager inside).
	const isCliInstall = (e: { args: readonly string[] }, scripts: "deps" | "project") =>
		e.args[1]?.endsWith("/bin/workers-pipeline.js") === true &&
		e.args[2] === "install" &&
		e.args[e.args.indexOf("--scripts") + 1] === scripts;
	// The dependency installs, keyed on lockfiles; the project's own lifecycle scripts run after
	// its sources are in, so they are not among them.
	const isInstall = (e: { args: readonly string[] }) =>
		(e.args[0] === "npm" && e.args[1] === "ci") || isCliInstall(e, "deps");

	it(
		"lint and test pass, installing once per lockfile",
		async () => {
			expect(await call("lint")).toMatch(/lint passed/);
			expect(await call("test")).toMatch(/test passed/);
			// Pack stage, pipeline --omit=dev, the app: three installs, none repeated for test.
			const installs = engine.stats.execs.filter(isInstall);
			expect(installs.filter((e) => !e.cached).length).toBeLessThanOrEqual(3);
			expect(npmCi().some((e) => e.args.includes("--omit=dev"))).toBe(true);
			expect(installs.some((e) => e.args[2] === "install")).toBe(true);
		},
		HEAVY,
	);

	it(
		"after a one-file source change, no install re-runs",
		async () => {
			// New content on every run: the engine's layer store outlives runs (and machines
			// built from this one), so a fixed text could be a cache hit from an earlier run.
			writeFileSync(
				join(context, "src/one-file-change.ts"),
				`export const changed = "${randomUUID()}";\n`,
			);
			const before = engine.stats.execs.length;
			expect(await call("lint")).toMatch(/lint passed/);
			const ran = engine.stats.execs.slice(before);
			expect(ran.filter(isInstall).length).toBeGreaterThan(0);
			expect(ran.filter(isInstall).every((e) => e.cached)).toBe(true);
			// The project's lifecycle scripts see the changed sources: run again.
			expect(ran.find((e) => isCliInstall(e, "project"))?.cached).toBe(false);
			expect(ran.find((e) => e.args.includes("lint"))?.cached).toBe(false);
			rmSync(join(context, "src/one-file-change.ts"));
		},
		HEAVY,
	);

	// An app of its own (files by path), its lockfile written by its manager's `lock` command as
	// in a real checkout, then `test` on it: the CLI's install exec the call asked for.
	const testApp = async (
		files: Record<string, string>,
		lock: [string, ...string[]],
		ctor: Record<string, unknown> = {},
	) => {
		const dir = mkdtempSync(join(tmpdir(), "wp-dagger-app-"));
		try {
			for (const [rel, text] of Object.entries(files)) {
				mkdirSync(join(dir, rel, ".."), { recursive: true });
				writeFileSync(join(dir, rel), text);
			}
			const [command, ...args] = lock;
			const locked = spawnSync(command, args, { cwd: dir, encoding: "utf8" });
			expect(locked.status, locked.stderr).toBe(0);
			const before = engine.stats.execs.length;
			const out = await call("test", {}, { source: sdk.dag.host().directory(dir), ...ctor });
			expect(out).toMatch(/test passed/);
			// The CLI's install ran (or its layer from an earlier run of this same lockfile).
			return engine.stats.execs.slice(before).find((e) => isCliInstall(e, "deps"));
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	};

	it(
		"a pnpm app installs with pnpm from its own lockfile (the CLI's install), then tests",
		async () => {
			const manifest = {
				name: "pnpm-app",
				private: true,
				packageManager: "pnpm@9.15.0",
				dependencies: { "is-number": "7.0.0" },
				// Passes only when pnpm's layout installed the dependency.
				scripts: {
					test: "node -e \"require('is-number'); require('fs').statSync('node_modules/.pnpm')\"",
				},
			};
			const install = await testApp(
				{
					"package.json": `${JSON.stringify(manifest, null, 2)}\n`,
					"wrangler.jsonc": '{ "name": "pnpm-app", "main": "src/index.js" }\n',
				},
				// The lockfile as pnpm writes it (from the npm registry, as in the container).
				["npx", "--yes", "pnpm@9.15.0", "install", "--lockfile-only"],
			);
			expect(install?.args).toContain("/app");
		},
		HEAVY,
	);

	it(
		"a Yarn PnP app (no node_modules) installs with yarn 4, then its test.command runs a dependency's binary",
		async () => {
			const manifest = {
				name: "yarn-pnp-app",
				private: true,
				packageManager: "yarn@4.18.1",
				devDependencies: { semver: "7.6.3" },
			};
			const registry = spawnSync("npm", ["config", "get", "registry"], { encoding: "utf8" });
			const install = await testApp(
				{
					"package.json": `${JSON.stringify(manifest, null, 2)}\n`,
					// The stand-in's containers reach the registry through HTTPS_PROXY (its README), which
					// Yarn reads only from its own config; a real engine gives them the host's network.
					".yarnrc.yml": [
						"nodeLinker: pnp",
						`npmRegistryServer: "${registry.stdout.trim().replace(/\/$/, "")}"`,
						// biome-ignore lint/suspicious/noTemplateCurlyInString: Yarn's own ${VAR:-} syntax.
						'httpsProxy: "${HTTPS_PROXY:-}"',
						"",
					].join("\n"),
					// semver's bin, in a zip only .pnp.cjs can open: passes only when the CLI runs it so.
					"workers-pipeline.jsonc":
						'{ "test": { "command": ["semver", "--range", ">=1", "1.2.3"] } }\n',
					"wrangler.jsonc": '{ "name": "yarn-pnp-app", "main": "src/index.js" }\n',
				},
				// The lockfile as yarn writes it, without fetching the packages.
				["npx", "--yes", "@yarnpkg/cli-dist@4.18.1", "install", "--mode=update-lockfile"],
			);
			expect(install?.args).toContain("/app");
		},
		HEAVY,
	);

	it(
		"an app whose postinstall needs its sources (prisma generate) installs, then runs it on them",
		async () => {
			const manifest = {
				name: "prisma-app",
				private: true,
				scripts: {
					// As `prisma generate`: reads the schema, writes the client the app requires.
					postinstall:
						"node -e \"const fs = require('fs'); fs.writeFileSync('client.js', 'module.exports = ' + JSON.stringify(fs.readFileSync('prisma/schema.prisma', 'utf8')))\"",
					test: "node -e \"if (!require('./client.js').includes('model User')) process.exit(1)\"",
				},
			};
			const install = await testApp(
				{
					"package.json": `${JSON.stringify(manifest, null, 2)}\n`,
					"prisma/schema.prisma": "model User {\n  id Int @id\n}\n",
					"wrangler.jsonc": '{ "name": "prisma-app", "main": "src/index.js" }\n',
				},
				["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
			);
			expect(install?.args).toContain("/app");
		},
		HEAVY,
	);

	it(
		"a workspace's app (--source . --app-dir apps/api) installs with its workspace, then tests",
		async () => {
			const api = {
				name: "api",
				private: true,
				dependencies: { "@acme/shared": "1.0.0", "is-number": "7.0.0" },
				// Passes only when the workspace's install linked its package and fetched the other.
				scripts: {
					test: "node -e \"if (require('@acme/shared') !== 42) process.exit(1); require('is-number')\"",
				},
			};
			const install = await testApp(
				{
					"package.json": JSON.stringify({
						name: "mono",
						private: true,
						workspaces: ["apps/*", "packages/*"],
					}),
					"packages/shared/package.json": JSON.stringify({
						name: "@acme/shared",
						version: "1.0.0",
						main: "index.js",
					}),
					"packages/shared/index.js": "module.exports = 42;\n",
					"apps/api/package.json": JSON.stringify(api),
					"apps/api/wrangler.jsonc": '{ "name": "api", "main": "src/index.js" }\n',
				},
				// The workspace's one lockfile, at its root, as npm writes it.
				["npm", "install", "--package-lock-only", "--no-audit", "--no-fund"],
				{ appDir: "apps/api" },
			);
			expect(install?.args).toContain("/app/apps/api");
		},
		HEAVY,
	);

	it(
		"an app with its own lockfile given with its repository (--source . --app-dir apps/api) installs from that lockfile",
		async () => {
			const api = {
				name: "api",
				private: true,
				packageManager: "pnpm@9.15.0",
				dependencies: { ms: "2.0.0" },
				// Passes only when pnpm installed from apps/api's own lockfile, which pins ms to 2.0.0
				// under ^2.0.0: without it, pnpm would resolve 2.1.3.
				scripts: {
					test: "node -e \"if (require('ms/package.json').version !== '2.0.0') process.exit(1)\"",
				},
			};
			const install = await testApp(
				{
					// Not a workspace: the repository's root holds the app's migrations (init's --source .).
					"packages/db/migrations/0001_init.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
					"apps/api/package.json": JSON.stringify(api),
					"apps/api/wrangler.jsonc":
						'{ "name": "api", "main": "src/index.js", "d1_databases": [{ "binding": "DB", "migrations_dir": "../../packages/db/migrations" }] }\n',
				},
				[
					"sh",
					"-c",
					'npx --yes pnpm@9.15.0 install --lockfile-only --dir apps/api && sed -i \'s/specifier: 2.0.0/specifier: ^2.0.0/\' apps/api/pnpm-lock.yaml && sed -i \'s/"ms":"2.0.0"/"ms":"^2.0.0"/\' apps/api/package.json',
				],
				{ appDir: "apps/api" },
			);
			expect(install?.args).toContain("/app/apps/api");
		},
		HEAVY,
	);

	it(
		"migrationTest returns the CLI's own JSON report",
		async () => {
			const text = (await call("migrationTest", {}, {}, (f) => f.contents())) as string;
			const report = JSON.parse(text);
			expect(report).toMatchObject({ ok: true, command: "migration-test" });
		},
		HEAVY,
	);

	it(
		"build exports .open-next, and ci reuses it with one summary of concurrent checks",
		async () => {
			const dest = join(out, "open-next");
			await call("build", {}, { commit: COMMIT }, (d) => d.export(dest));
			expect(readdirNames(dest)).toContain("worker.js");
			const before = engine.stats.execs.length;
			const summary = (await call("ci", { noParity: true }, { commit: COMMIT })) as string;
			for (const step of ["lint", "test", "build", "migration-test"])
				expect(summary).toContain(step);
			const ran = engine.stats.execs.slice(before);
			expect(ran.find((e) => e.args.includes("build"))?.cached).toBe(true);
		},
		HEAVY,
	);

	it(
		"the caller's source is filtered inside the module, also when passed explicitly",
		async () => {
			writeFileSync(join(context, ".env.production"), "SECRET=1\n");
			writeFileSync(join(context, ".dev.vars"), "SECRET=1\n");
			mkdirSync(join(context, "coverage"), { recursive: true });
			writeFileSync(join(context, "coverage/x.json"), "{}");
			const entries = (await call("app", {}, { source: sdk.dag.host().directory(context) }, (d) =>
				d.entries(),
			)) as string[];
			expect(entries).toContain("migrations/");
			for (const gone of [".env.production", ".dev.vars", "coverage/", ".git/", "node_modules/"])
				expect(entries).not.toContain(gone);
			for (const f of [".env.production", ".dev.vars"]) rmSync(join(context, f));
			rmSync(join(context, "coverage"), { recursive: true });
		},
		HEAVY,
	);

	it(
		"plan and migrate reach the loopback API, naming the CI run as the lock owner",
		async () => {
			const plan = (await call("plan", cf(), remote())) as string;
			expect(plan).toMatch(/0001_create_users\.sql/);
			const dir = join(out, "migrate");
			await call("migrate", cf(), remote(), (d) => d.export(dir));
			expect(readFileSync(join(dir, "exit-code"), "utf8")).toBe("0\n");
			const report = JSON.parse(readFileSync(join(dir, "migrate.json"), "utf8"));
			expect(report.ok).toBe(true);
			expect(JSON.stringify(report)).toContain("octocat via GitHub Actions acme/shop run 4242");
			const applied = api.database(STAGING_DB.uuid).prepare("SELECT name FROM d1_migrations").all();
			expect(applied.length).toBeGreaterThanOrEqual(8);
			// The token never lands in a report, nor in any layer the engine kept.
			expect(JSON.stringify(report)).not.toContain(TOKEN);
			expect(spawnSync("grep", ["-rlF", TOKEN, ...engine.layerDirs(), "/dev/null"]).status).toBe(1);
			bookmark = /"bookmark":\s*"([^"]+)"/.exec(
				readFileSync(join(dir, "migrate.json"), "utf8"),
			)?.[1];
			expect(bookmark).toBeDefined();
		},
		HEAVY,
	);

	it(
		"a failing migrate still returns its reports with the exit code beside them",
		async () => {
			// Production's database already has a users table the ledger does not know about.
			api.addDatabase(PRODUCTION_DB);
			api.database(PRODUCTION_DB.uuid).exec("CREATE TABLE users (id INTEGER PRIMARY KEY)");
			const dir = join(out, "migrate-failed");
			await call("migrate", { ...cf(), env: "production" }, remote(), (d) => d.export(dir));
			expect(readFileSync(join(dir, "exit-code"), "utf8")).toBe("1\n");
			const report = JSON.parse(readFileSync(join(dir, "migrate.json"), "utf8"));
			expect(report.ok).toBe(false);
			expect(report.findings.length).toBeGreaterThan(0);
		},
		HEAVY,
	);

	it(
		"restore and baseline run against the loopback API and return their reports",
		async () => {
			const restored = join(out, "restore");
			await call("restore", { ...cf(), bookmark }, remote(), (d) => d.export(restored));
			expect(readFileSync(join(restored, "exit-code"), "utf8")).toBe("0\n");
			expect(JSON.parse(readFileSync(join(restored, "restore.json"), "utf8")).ok).toBe(true);
			// Restored to before the migrations: the ledger is empty again.
			const db = api.database(STAGING_DB.uuid);
			const left = db
				.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'users'")
				.get() as { n: number };
			expect(left.n).toBe(0);
			const based = join(out, "baseline");
			await call("baseline", { ...cf(), env: "production", through: "0001" }, remote(), (d) =>
				d.export(based),
			);
			const code = readFileSync(join(based, "exit-code"), "utf8");
			const report = JSON.parse(readFileSync(join(based, "baseline.json"), "utf8"));
			expect(code).toBe(report.ok ? "0\n" : "1\n");
		},
		HEAVY,
	);

	it(
		"deploy migrates, ships the build and checks health in one call; rollback goes back",
		async () => {
			const ctor = remote({ commit: COMMIT });
			const first = join(out, "deploy-1");
			await call("deploy", { ...cf(), healthTimeout: 60 }, ctor, (d) => d.export(first));
			const report = JSON.parse(readFileSync(join(first, "deploy.json"), "utf8"));
			expect(readFileSync(join(first, "exit-code"), "utf8"), JSON.stringify(report.findings)).toBe(
				"0\n",
			);
			const v1 = api.workers.liveVersion(SCRIPT);
			expect(v1).toBeDefined();
			await call("deploy", { ...cf(), healthTimeout: 60 }, ctor, (d) =>
				d.export(join(out, "deploy-2")),
			);
			expect(api.workers.liveVersion(SCRIPT)).not.toBe(v1);
			const back = join(out, "rollback");
			await call("rollback", { ...cf(), to: v1 }, ctor, (d) => d.export(back));
			expect(readFileSync(join(back, "exit-code"), "utf8")).toBe("0\n");
			expect(api.workers.liveVersion(SCRIPT)).toBe(v1);
		},
		HEAVY,
	);

	it(
		"deploy builds an app that is not OpenNext's in the same call, for its environment; build says why it returns nothing",
		async () => {
			const dir = mkdtempSync(join(tmpdir(), "wp-dagger-built-"));
			try {
				const healthUrl = `http://127.0.0.1:${(health.address() as AddressInfo).port}/api/health`;
				const files: Record<string, string> = {
					"package.json": `${JSON.stringify({ name: "built-app", private: true }, null, 2)}\n`,
					// The Worker exists only once its own build wrote it (git-ignored, as dist/ is).
					"build.mjs": `import { mkdirSync, writeFileSync } from "node:fs";\nmkdirSync("dist", { recursive: true });\nwriteFileSync("dist/worker.js", "export default { fetch: () => new Response('${randomUUID()}') };\\n");\n`,
					".gitignore": "dist\n",
					"wrangler.jsonc": `${JSON.stringify({ name: "built-app", main: "dist/worker.js", compatibility_date: "2026-06-01", env: { staging: { name: SCRIPT } } }, null, 2)}\n`,
					"workers-pipeline.jsonc": `${JSON.stringify({ build: { command: ["node", "build.mjs"], output: "dist/worker.js" }, deploy: { healthUrls: { staging: healthUrl } } }, null, 2)}\n`,
				};
				for (const [rel, text] of Object.entries(files)) writeFileSync(join(dir, rel), text);
				const locked = spawnSync(
					"npm",
					["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
					{ cwd: dir, encoding: "utf8" },
				);
				expect(locked.status, locked.stderr).toBe(0);
				const ctor = remote({ commit: COMMIT, source: sdk.dag.host().directory(dir) });
				await expect(call("build", {}, ctor)).rejects.toThrow(
					/this app's build wrote none \(not an OpenNext app\): call deploy or preview without --build/,
				);
				const before = api.workers.liveVersion(SCRIPT);
				const execsBefore = engine.stats.execs.length;
				const reports = join(out, "deploy-built");
				await call("deploy", { ...cf(), healthTimeout: 60, strategy: "immediate" }, ctor, (d) =>
					d.export(reports),
				);
				const report = JSON.parse(readFileSync(join(reports, "deploy.json"), "utf8"));
				expect(
					readFileSync(join(reports, "exit-code"), "utf8"),
					JSON.stringify(report.findings),
				).toBe("0\n");
				expect(api.workers.liveVersion(SCRIPT)).not.toBe(before);
				// Built in this call, for the environment it deploys to.
				const build = engine.stats.execs.slice(execsBefore).find((e) => e.args[2] === "build");
				expect(build?.args.join(" ")).toContain("--env staging");
			} finally {
				rmSync(dir, { recursive: true, force: true });
			}
		},
		HEAVY,
	);

	it(
		"deploy refuses a reserved secret name in the CLI and still returns its reports",
		async () => {
			const dir = join(out, "deploy-refused");
			const args = {
				...cf(),
				secretsFromEnv: ["CLOUDFLARE_API_TOKEN"],
				secretValues: [sdk.dag.setSecret("x", "y")],
			};
			await call("deploy", args, remote({ commit: COMMIT }), (d) => d.export(dir));
			expect(readFileSync(join(dir, "exit-code"), "utf8")).toBe("2\n");
		},
		HEAVY,
	);

	it(
		"the consumer module calls the module with its own source",
		async () => {
			engine.modules.workersPipeline = moduleBinding(sdk, mod);
			let text = "";
			await sdk.connection(async () => {
				installBinding(sdk, "workersPipeline", { migrationTest: "File", ci: "scalar" });
				const instance = construct(sdk, consumer, {});
				const file = await callFunction(sdk, consumer, instance, "migrationReport", {});
				text = await file.contents();
			});
			expect(JSON.parse(text)).toMatchObject({ ok: true, command: "migration-test" });
		},
		HEAVY,
	);
});

const readdirNames = (dir: string): string[] =>
	spawnSync("ls", ["-1", dir], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
