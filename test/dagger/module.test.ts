import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	type Call,
	chainOf,
	type FakeEngine,
	type IntrospectedArg,
	type IntrospectedModule,
	introspectModule,
	MODULE_ENTRY,
	normalizeQuery,
	PLAINTEXT_SENTINEL,
	runTsc,
	sdkEntry,
	startFakeEngine,
} from "./support.ts";

const NODE_IMAGE =
	"node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6";
const CLI = ["node", "/pipeline/bin/workers-pipeline.js"];
const GLOBALS = ["--cwd", "/app", "--report-dir", "/app/.reports"];

describe("typecheck", () => {
	it("compiles .dagger/src against @dagger.io/dagger 0.21.9", () => {
		const { status, output } = runTsc(".dagger/tsconfig.json");
		expect(output).toBe("");
		expect(status).toBe(0);
	});

	it("compiles the example consumer against a stub of its generated binding", () => {
		const { status, output } = runTsc("test/dagger/tsconfig.consumer.json");
		expect(output).toBe("");
		expect(status).toBe(0);
	});
});

// What `dagger call <fn> --help` will show: names, types, optionality, defaults.
type TypeRef = IntrospectedArg["type"] & { typeDef?: TypeRef };
const typeName = (t?: TypeRef): string | undefined =>
	t?.kind === "LIST_KIND"
		? `[${typeName(t.typeDef)}]`
		: (t?.name ?? t?.kind.replace("_KIND", "").toLowerCase());
const signature = (args: Record<string, IntrospectedArg>) =>
	Object.values(args).map((a) => {
		const type = typeName(a.type);
		const optional = a.isOptional || a.defaultValue !== undefined || a.defaultPath !== undefined;
		const dflt = a.defaultValue !== undefined ? ` = ${String(a.defaultValue)}` : "";
		const path = a.defaultPath !== undefined ? ` (defaultPath ${a.defaultPath})` : "";
		return `${a.name}${optional ? "?" : ""}: ${type}${dflt}${path}`;
	});

describe("introspection (the SDK's own scanner)", () => {
	let mod: IntrospectedModule;
	beforeAll(async () => {
		mod = await introspectModule();
	});

	it("exposes one object, WorkersPipeline, with the DeployEnv enum", () => {
		expect(Object.keys(mod.objects)).toEqual(["WorkersPipeline"]);
		const values = Object.values(mod.enums.DeployEnv?.values ?? {});
		// Member names are what users type: `--env production`.
		expect(values.map((v) => [v.name, v.value])).toEqual([
			["staging", "staging"],
			["production", "production"],
		]);
	});

	it("takes the app as `source` and its own pipeline code by default", () => {
		const ctor = mod.objects.WorkersPipeline?._constructor?.arguments ?? {};
		expect(signature(ctor)).toEqual([
			"source?: Directory (defaultPath /)",
			"pipeline?: Directory (defaultPath /)",
			"wranglerConfig?: string",
			"commit?: string",
		]);
		expect(ctor.source?.ignore).toEqual([
			"**/node_modules",
			"**/.next",
			"**/.open-next",
			"**/.wrangler",
			"**/.tools",
			"**/.reports",
		]);
		expect(ctor.pipeline?.ignore).toEqual([
			"*",
			"!ci",
			"!bin",
			"!scripts",
			"!package.json",
			"!package-lock.json",
			"**/node_modules",
		]);
	});

	it("has exactly the functions, arguments and cache policies the CLI users type", () => {
		const methods = mod.objects.WorkersPipeline?.methods ?? {};
		const table = Object.fromEntries(
			Object.values(methods).map((fn) => [
				fn.name,
				{
					returns: fn.returnType?.name ?? fn.returnType?.kind,
					cache: fn.cache ?? "default",
					args: signature(fn.arguments),
				},
			]),
		);
		const cf = ["env: DeployEnv", "cloudflareApiToken: Secret", "cloudflareAccountId: string"];
		expect(table).toEqual({
			lint: { returns: "STRING_KIND", cache: "default", args: [] },
			test: { returns: "STRING_KIND", cache: "default", args: [] },
			build: { returns: "Directory", cache: "default", args: ["noCache?: boolean = false"] },
			migrationTest: {
				returns: "File",
				cache: "default",
				args: [
					"dir?: string",
					"env?: DeployEnv",
					"binding?: string",
					"updateSnapshot?: boolean = false",
					"parity?: boolean = false",
					"cache?: boolean = false",
				],
			},
			ci: {
				returns: "STRING_KIND",
				cache: "default",
				args: [
					"noParity?: boolean = false",
					"noBuild?: boolean = false",
					"noCache?: boolean = false",
				],
			},
			plan: {
				returns: "STRING_KIND",
				cache: "never",
				args: [...cf, "binding?: string", "allowOutOfOrder?: boolean = false"],
			},
			migrate: {
				returns: "Directory",
				cache: "never",
				args: [
					...cf,
					"binding?: string",
					"dryRun?: boolean = false",
					"autoRestore?: boolean = false",
					"rehearse?: boolean = false",
					"allowOutOfOrder?: boolean = false",
					"lockTimeout?: integer",
					"lockTtl?: integer",
				],
			},
			baseline: {
				returns: "Directory",
				cache: "never",
				args: [...cf, "through: string", "binding?: string", "lockTimeout?: integer"],
			},
			restore: {
				returns: "Directory",
				cache: "never",
				args: [...cf, "bookmark: string", "binding?: string", "lockTimeout?: integer"],
			},
			deploy: {
				returns: "Directory",
				cache: "never",
				args: [
					...cf,
					"binding?: string",
					"skipMigrate?: boolean = false",
					"healthTimeout?: integer",
					"secretsFile?: Secret",
					"secretsFromEnv?: [string]",
					"secretValues?: [Secret]",
					"autoRestore?: boolean = false",
					"lockTimeout?: integer",
				],
			},
			rollback: { returns: "Directory", cache: "never", args: [...cf, "to?: string"] },
		});
	});
});

// The module's classes, loaded the way the runtime loads them, plus the SDK instance they share.
interface Sdk {
	connection: (fn: () => Promise<void>) => Promise<void>;
	dag: {
		loadDirectoryFromID: (id: string) => unknown;
		loadSecretFromID: (id: string) => unknown;
	};
}
type Fn = (...args: unknown[]) => { id: () => Promise<string> } | Promise<string>;
type Module = Record<string, Fn>;
interface ModuleExports {
	WorkersPipeline: new (...args: unknown[]) => Module;
	DeployEnv: Record<string, string>;
}

const TOKEN_ID = "cloudflare-api-token-secret-id";
const SECRETS_ID = "worker-secrets-file-secret-id";
const WORKER_SECRET_IDS = ["worker-secret-api-key-id", "worker-secret-session-id"];
const SECRET_IDS = [TOKEN_ID, SECRETS_ID, ...WORKER_SECRET_IDS];
const ACCOUNT = "0123456789abcdef0123456789abcdef";

interface Case {
	fn: string;
	args: (s: Sdk["dag"], env: ModuleExports["DeployEnv"]) => unknown[];
	argv: string[];
	cloudflare: boolean;
	appDeps: boolean;
	/** Secret variables besides the API token, in order. */
	workerSecrets?: { name: string; secret: string }[];
}

const cf = (s: Sdk["dag"]) => [s.loadSecretFromID(TOKEN_ID), ACCOUNT];
const cases: Case[] = [
	{ fn: "lint", args: () => [], argv: ["lint", ...GLOBALS], cloudflare: false, appDeps: true },
	{ fn: "test", args: () => [], argv: ["test", ...GLOBALS], cloudflare: false, appDeps: true },
	{
		fn: "build",
		args: () => [true],
		argv: ["build", ...GLOBALS, "--no-cache"],
		cloudflare: false,
		appDeps: true,
	},
	{
		fn: "migrationTest",
		args: (_, e) => ["migrations", e.staging, "DB", false, true, true],
		argv: ["migration-test", "--cwd", "/app", "--json", "--report-dir", "/app/.reports"].concat([
			"--dir",
			"migrations",
			"--env",
			"staging",
			"--binding",
			"DB",
			"--parity",
			"--cache",
		]),
		cloudflare: false,
		appDeps: false,
	},
	{
		fn: "ci",
		args: () => [true, true, true],
		argv: ["ci", ...GLOBALS, "--no-parity", "--no-build", "--no-cache"],
		cloudflare: false,
		appDeps: true,
	},
	{
		fn: "plan",
		args: (s, e) => [e.production, ...cf(s), "DB", true],
		argv: ["plan", ...GLOBALS, "--env", "production", "--binding", "DB", "--allow-out-of-order"],
		cloudflare: true,
		appDeps: false,
	},
	{
		fn: "migrate",
		args: (s, e) => [e.production, ...cf(s), undefined, false, true, true, false, 120, 600],
		argv: ["migrate", ...GLOBALS, "--env", "production", "--auto-restore", "--rehearse"].concat([
			"--lock-timeout",
			"120",
			"--lock-ttl",
			"600",
		]),
		cloudflare: true,
		appDeps: false,
	},
	{
		fn: "baseline",
		args: (s, e) => [e.production, ...cf(s), "0007", undefined, 60],
		argv: ["baseline", ...GLOBALS, "--env", "production", "--through", "0007"].concat([
			"--lock-timeout",
			"60",
		]),
		cloudflare: true,
		appDeps: false,
	},
	{
		fn: "restore",
		args: (s, e) => [e.production, ...cf(s), "00000085-0000024c-00004c6d-8e61", "DB"],
		argv: ["restore", ...GLOBALS, "--env", "production", "--binding", "DB"].concat([
			"--bookmark",
			"00000085-0000024c-00004c6d-8e61",
		]),
		cloudflare: true,
		appDeps: false,
	},
	{
		fn: "deploy",
		args: (s, e) => [
			e.staging,
			...cf(s),
			undefined,
			true,
			90,
			s.loadSecretFromID(SECRETS_ID),
			["API_KEY", "SESSION_SECRET"],
			WORKER_SECRET_IDS.map((id) => s.loadSecretFromID(id)),
			true,
			30,
		],
		argv: ["deploy", ...GLOBALS, "--env", "staging", "--skip-migrate", "--health-timeout", "90"]
			.concat(["--secrets-file", "/run/secrets/workers-pipeline-secrets"])
			.concat(["--secrets-from-env", "API_KEY,SESSION_SECRET", "--auto-restore"])
			.concat(["--lock-timeout", "30"]),
		cloudflare: true,
		appDeps: true,
		workerSecrets: [
			{ name: "API_KEY", secret: "worker-secret-api-key-id" },
			{ name: "SESSION_SECRET", secret: "worker-secret-session-id" },
		],
	},
	{
		fn: "rollback",
		args: (s, e) => [e.production, ...cf(s), "version-123"],
		argv: ["rollback", ...GLOBALS, "--env", "production", "--to", "version-123"],
		cloudflare: true,
		appDeps: false,
	},
];

describe("execution against a loopback engine", () => {
	let engine: FakeEngine;
	let sdk: Sdk;
	let mod: ModuleExports;
	beforeAll(async () => {
		engine = await startFakeEngine();
		// The SDK's public connection path: no provisioning, just port + token.
		process.env.DAGGER_SESSION_PORT = String(engine.port);
		process.env.DAGGER_SESSION_TOKEN = engine.token;
		sdk = (await import(pathToFileURL(sdkEntry()).href)) as Sdk;
		mod = (await import(pathToFileURL(MODULE_ENTRY).href)) as ModuleExports;
	});
	afterAll(async () => {
		delete process.env.DAGGER_SESSION_PORT;
		delete process.env.DAGGER_SESSION_TOKEN;
		await engine.close();
	});

	const run = async (c: Case, commit?: string): Promise<string[]> => {
		const start = engine.queries.length;
		await sdk.connection(async () => {
			const pipeline = new mod.WorkersPipeline(
				sdk.dag.loadDirectoryFromID("app-source-dir-id"),
				sdk.dag.loadDirectoryFromID("pipeline-code-dir-id"),
				undefined,
				commit,
			);
			const result = pipeline[c.fn]?.(...c.args(sdk.dag, mod.DeployEnv));
			// Lazy Directory/File results are forced the way the runtime does: by asking for an ID.
			await (result instanceof Promise ? result : result?.id());
		});
		return engine.queries.slice(start);
	};

	it.each(cases)("$fn sends the expected queries", async (c) => {
		const queries = await run(c);
		// The last query runs the function's own CLI call (deploy first resolves its build).
		const final = queries.findLast((q) => q.includes("/pipeline/bin/workers-pipeline.js"));
		expect(final, "no query runs the CLI").toBeDefined();
		const chain = chainOf(final ?? "");
		const execs = chain.filter((s) => s.field === "withExec");
		const at = (pred: (s: Call) => boolean) => chain.findIndex(pred);

		// Pinned image and the shared npm cache.
		expect(chain[1]).toEqual({ field: "from", args: { address: NODE_IMAGE } });
		expect(chain.find((s) => s.field === "withMountedCache")?.args.path).toBe("/root/.npm");
		const printed = queries.map(normalizeQuery);
		expect(printed.some((q) => q.includes('cacheVolume(key: "workers-pipeline-npm")'))).toBe(true);

		// The pipeline's code and the caller's app, mounted where the CLI expects them.
		const mounts = chain.filter((s) => s.field === "withMountedDirectory").map((s) => s.args);
		expect(mounts).toEqual([
			{ path: "/pipeline", source: "pipeline-code-dir-id" },
			{ path: "/app", source: "app-source-dir-id" },
		]);

		// npm ci for the pipeline, for the app only when the step needs its dependencies, then the CLI.
		const npmCi = execs.filter((s) => (s.args.args as string[])[0] === "npm");
		expect(npmCi).toHaveLength(c.appDeps ? 2 : 1);
		const cli = execs.at(-1);
		expect(cli?.args.args).toEqual([...CLI, ...c.argv]);

		// Secrets: only through withSecretVariable / withMountedSecret; never a plain value anywhere.
		const all = queries.join("\n");
		expect(all).not.toContain(PLAINTEXT_SENTINEL);
		const envs = chain.filter((s) => s.field === "withEnvVariable").map((s) => s.args);
		for (const e of envs) expect(String(e.name)).not.toMatch(/TOKEN|SECRET|PASSWORD/);
		for (const s of chain) {
			if (s.field === "withSecretVariable" || s.field === "withMountedSecret") continue;
			for (const id of SECRET_IDS) expect(JSON.stringify(s.args)).not.toContain(id);
		}
		const secretVar = chain.filter((s) => s.field === "withSecretVariable").map((s) => s.args);
		const buster = at((s) => s.field === "withEnvVariable" && s.args.name === "WP_CACHE_BUSTER");
		const lastInstall = chain.lastIndexOf(npmCi.at(-1) as Call);
		if (c.cloudflare) {
			expect(secretVar).toEqual([
				...(c.workerSecrets ?? []),
				{ name: "CLOUDFLARE_API_TOKEN", secret: TOKEN_ID },
			]);
			expect(envs).toContainEqual({ name: "CLOUDFLARE_ACCOUNT_ID", value: ACCOUNT });
			// Credentials arrive after every install; the buster sits right before the remote call.
			expect(at((s) => s.field === "withSecretVariable")).toBeGreaterThan(lastInstall);
			expect(buster).toBeGreaterThan(lastInstall);
			expect(buster).toBeLessThan(chain.lastIndexOf(cli as Call));
		} else {
			expect(secretVar).toEqual([]);
			expect(buster).toBe(-1);
		}

		await expect(printed.join("\n# ---\n")).toMatchFileSnapshot(
			`__snapshots__/${c.fn}.graphql.snap`,
		);
	});

	it("passes the Worker secrets file as a mounted secret", async () => {
		const deploy = cases.find((c) => c.fn === "deploy") as Case;
		const queries = await run(deploy);
		const chain = chainOf(queries.findLast((q) => q.includes("workers-pipeline.js")) ?? "");
		expect(chain.filter((s) => s.field === "withMountedSecret").map((s) => s.args)).toEqual([
			{ path: "/run/secrets/workers-pipeline-secrets", source: SECRETS_ID },
		]);
	});

	it("deploys the build made by build(), stamped with the commit it was given", async () => {
		const deploy = cases.find((c) => c.fn === "deploy") as Case;
		const queries = await run(deploy, "0123456789abcdef0123456789abcdef01234567");
		const cliQueries = queries.filter((q) => q.includes("workers-pipeline.js"));
		expect(cliQueries).toHaveLength(2);
		const [build, ship] = cliQueries.map(chainOf) as [Call[], Call[]];
		const argv = (chain: Call[]) =>
			((chain.filter((s) => s.field === "withExec").at(-1)?.args.args ?? []) as string[]).slice(2);
		expect(argv(build)).toEqual(["build", ...GLOBALS]);
		expect(build.at(-2)).toEqual({ field: "directory", args: { path: "/app/.open-next" } });
		const copied = ship.filter((s) => s.field === "withDirectory").map((s) => s.args);
		expect(copied).toHaveLength(1);
		expect(copied[0]?.path).toBe("/app/.open-next");
		for (const chain of [build, ship]) {
			const sha = chain.filter(
				(s) => s.field === "withEnvVariable" && s.args.name === "GITHUB_SHA",
			);
			expect(sha.map((s) => s.args.value)).toEqual(["0123456789abcdef0123456789abcdef01234567"]);
			// After the installs, so a new commit reuses them.
			const shaAt = chain.indexOf(sha[0] as Call);
			const installs = chain.filter(
				(s) => s.field === "withExec" && (s.args.args as string[])[0] === "npm",
			);
			expect(shaAt).toBeGreaterThan(chain.lastIndexOf(installs.at(-1) as Call));
		}
	});

	it("refuses Worker secret names it cannot pass safely", async () => {
		const attempt = (names: string[], ids: string[]) =>
			sdk.connection(async () => {
				const pipeline = new mod.WorkersPipeline(
					sdk.dag.loadDirectoryFromID("app-source-dir-id"),
					sdk.dag.loadDirectoryFromID("pipeline-code-dir-id"),
				);
				const secrets = ids.map((id) => sdk.dag.loadSecretFromID(id));
				const token = sdk.dag.loadSecretFromID(TOKEN_ID);
				pipeline.deploy?.(
					"staging",
					token,
					ACCOUNT,
					undefined,
					false,
					undefined,
					undefined,
					names,
					secrets,
				);
			});
		await expect(attempt(["API_KEY"], [])).rejects.toThrow(/1 secretsFromEnv names but 0/);
		await expect(attempt(["CLOUDFLARE_API_TOKEN"], ["x"])).rejects.toThrow(/cannot be a Worker/);
		await expect(attempt(["A,B"], ["x"])).rejects.toThrow(/cannot be a Worker secret name/);
	});

	it("busts the cache on every Cloudflare call", async () => {
		const plan = cases.find((c) => c.fn === "plan") as Case;
		const busters = [];
		for (let i = 0; i < 2; i++) {
			const queries = await run(plan);
			const chain = chainOf(queries.find((q) => q.includes("workers-pipeline.js")) ?? "");
			busters.push(chain.find((s) => s.args.name === "WP_CACHE_BUSTER")?.args.value);
		}
		expect(busters[0]).not.toEqual(busters[1]);
	});
});
