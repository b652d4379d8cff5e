import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { resolveWranglerBin, runWrangler, usesRedirectedConfig } from "../cloudflare/wrangler.ts";
import { refusePagesProject, resolveEnvironment } from "../config/load.ts";
import type { ProjectConfig } from "../config/schema.ts";
import { EXPECTED_HEAD_VAR } from "../constants.ts";
import { UserError } from "../errors.ts";
import { parseCatalog, readCatalog } from "../migrations/catalog.ts";
import { localBin, toolCommand } from "../process.ts";
import type { Finding, StepResult } from "../report/model.ts";
import { projectBinDirs } from "../workspace.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import { buildStep } from "./build.ts";

export const DEFAULT_SERVE_HOST = "127.0.0.1";
/** Looked for, in this order, when e2e.seed is not set. */
export const SEED_CANDIDATES = ["seed.sql", "db/seed.sql"] as const;

export interface ServePlan {
	kind: "opennext" | "wrangler";
	file: string;
	args: string[];
}

export interface PlanServeOptions {
	project: ProjectConfig;
	host: string;
	port: number;
	inspectorPort: number;
	persistDir: string;
	/** The project's opennextjs-cloudflare, when it has one. */
	opennextBin: string | undefined;
	wranglerBin: string;
	/** The newest migration, passed as the Worker var deploy sets (the health contract's expected head). */
	expectedHead?: string;
}

export const isOpenNextProject = (root: string): boolean =>
	readdirSync(root).some((f) => /^open-next\.config\.(ts|js|mjs|cjs)$/.test(f));

export interface DevArgsOptions {
	host: string;
	port: number;
	inspectorPort: number;
	persistDir: string;
	/** Worker vars, each passed as `--var NAME:value`. */
	vars?: Record<string, string>;
}

/**
 * Pure: the `wrangler dev` flags of a local server nobody types into: bound to `host` (inspector on
 * 127.0.0.1), D1 persisted in `persistDir`, no interactive session. serve and the tests share it.
 */
export function planDevArgs(options: DevArgsOptions): string[] {
	return [
		"--ip",
		options.host,
		"--port",
		String(options.port),
		"--inspector-ip",
		"127.0.0.1",
		"--inspector-port",
		String(options.inspectorPort),
		"--persist-to",
		options.persistDir,
		"--show-interactive-dev-session=false",
		...Object.entries(options.vars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
	];
}

/**
 * Pure: the argv after `node` of `wrangler dev --config <config>` with planDevArgs' flags; with
 * no config, wrangler finds its own (a build's redirected one: usesRedirectedConfig).
 */
export function planWranglerDev(
	options: DevArgsOptions & { wranglerBin: string; config: string | undefined },
): string[] {
	const config = options.config === undefined ? [] : ["--config", options.config];
	return [options.wranglerBin, "dev", ...config, ...planDevArgs(options)];
}

/** Pure: how the app runs locally as it runs on Workers (OpenNext's preview, else wrangler dev). */
export function planServeCommand(options: PlanServeOptions): ServePlan {
	const vars: Record<string, string> = options.expectedHead
		? { [EXPECTED_HEAD_VAR]: options.expectedHead }
		: {};
	const dev = { ...options, vars };
	if (isOpenNextProject(options.project.root)) {
		if (!options.opennextBin) {
			throw new UserError(
				"This is an OpenNext project (open-next.config.*) but node_modules/.bin/opennextjs-cloudflare is missing: run `npm install`.",
				"E_CONFIG_INVALID",
			);
		}
		// `preview` populates the local caches, then hands the unknown flags to `wrangler dev`.
		return { kind: "opennext", file: options.opennextBin, args: ["preview", ...planDevArgs(dev)] };
	}
	return {
		kind: "wrangler",
		file: process.execPath,
		// After a Vite-plugin build, the config it wrote for its output (main is the built Worker).
		args: planWranglerDev({
			...dev,
			config: usesRedirectedConfig(options.project) ? undefined : options.project.wranglerPath,
		}),
	};
}

/** The project's seed file: e2e.seed, else the first of SEED_CANDIDATES that exists. */
export function findSeedFile(project: ProjectConfig): string | undefined {
	const configured = project.settings.e2e.seed;
	if (configured) {
		const file = path.resolve(project.root, configured);
		if (!existsSync(file)) {
			throw new UserError(
				`e2e.seed in workers-pipeline.jsonc names ${configured}, which does not exist in ${project.root}.`,
				"E_CONFIG_INVALID",
			);
		}
		return file;
	}
	return SEED_CANDIDATES.map((f) => path.join(project.root, f)).find((f) => existsSync(f));
}

export function freePort(host = "127.0.0.1"): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, host, () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

/** The env a local app and its tools get: the CLI's Node first, no metrics, no colour. */
export function appEnv(ctx: StepContext, root: string): Record<string, string | undefined> {
	return {
		...ctx.env,
		PATH: [...projectBinDirs(root), path.dirname(process.execPath), ctx.env.PATH ?? ""].join(
			path.delimiter,
		),
		WRANGLER_SEND_METRICS: "false",
		NEXT_TELEMETRY_DISABLED: "1",
		NO_COLOR: "1",
		FORCE_COLOR: "0",
	};
}

export interface LocalDatabase {
	persistDir: string;
	migrated: string[];
	seed: string | undefined;
	findings: Finding[];
	/** The newest migration of the first binding (what deploy passes as the expected head). */
	head?: string;
}

const tail = (text: string, lines = 30) => text.trimEnd().split("\n").slice(-lines).join("\n");

/** Applies the real migrations with `wrangler d1 migrations apply --local`, then the seed file. */
export async function prepareLocalDatabase(
	ctx: StepContext,
	{ project, persistDir }: { project: ProjectConfig; persistDir: string },
): Promise<LocalDatabase> {
	const databases = resolveEnvironment(project, undefined).databases;
	const seed = findSeedFile(project);
	const env = appEnv(ctx, project.root);
	const wrangler = (args: string[]) =>
		runWrangler({
			args: [...args, "--local", "--persist-to", persistDir, "--config", project.wranglerPath],
			cwd: project.root,
			projectRoot: project.root,
			env,
			timeoutMs: 5 * 60_000,
			signal: ctx.signal,
		});
	const migrated: string[] = [];
	for (const db of databases) {
		ctx.progress(`wrangler d1 migrations apply ${db.binding} --local`);
		const result = await wrangler(["d1", "migrations", "apply", db.binding]);
		if (result.failed) {
			return {
				persistDir,
				migrated,
				seed,
				findings: [
					{
						code: "E2E_MIGRATE_FAILED",
						severity: "error",
						message: `wrangler d1 migrations apply ${db.binding} --local failed (exit ${result.exitCode ?? result.signal}):\n${tail(result.stdout + result.stderr)}`,
					},
				],
			};
		}
		migrated.push(db.binding);
	}
	const first = databases[0];
	if (seed && first) {
		ctx.progress(`seeding ${first.binding} from ${path.relative(project.root, seed)}`);
		const result = await wrangler(["d1", "execute", first.binding, "--file", seed, "--yes"]);
		if (result.failed) {
			return {
				persistDir,
				migrated,
				seed,
				findings: [
					{
						code: "E2E_SEED_FAILED",
						severity: "error",
						file: path.relative(project.root, seed),
						message: `seeding the local D1 failed (exit ${result.exitCode ?? result.signal}); the seed must apply on top of every migration:\n${tail(result.stdout + result.stderr)}`,
					},
				],
			};
		}
	}
	const head = first
		? parseCatalog(readCatalog({ root: project.root, database: first })).migrations.at(-1)?.name
		: undefined;
	return { persistDir, migrated, seed, findings: [], head };
}

/** A local app started by startApp; `stop()` ends its whole process group by PID and waits. */
export interface RunningApp {
	url: string;
	pid: number;
	kind: ServePlan["kind"];
	child: ChildProcess;
	log: () => string;
	exited: Promise<number | null>;
	stop: () => Promise<void>;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
	try {
		process.kill(-pid, signal);
	} catch {
		// Already gone.
	}
}

export interface StartAppOptions {
	project: ProjectConfig;
	host: string;
	port?: number;
	persistDir: string;
	/** Print the app's output as it comes (the foreground `serve`). */
	onOutput?: (chunk: string) => void;
	/** The newest migration applied to the local D1. */
	expectedHead?: string;
}

/** Starts the app in its own process group; the caller waits for it with waitForHttp200. */
export async function startApp(ctx: StepContext, options: StartAppOptions): Promise<RunningApp> {
	const { project, host } = options;
	const port = options.port ?? (await freePort(host === "0.0.0.0" ? "127.0.0.1" : host));
	const plan = planServeCommand({
		project,
		host,
		port,
		inspectorPort: await freePort(),
		persistDir: options.persistDir,
		opennextBin: localBin(project.root, "opennextjs-cloudflare"),
		wranglerBin: resolveWranglerBin(project.root),
		expectedHead: options.expectedHead,
	});
	const command = toolCommand(project.root, plan.file, plan.args, appEnv(ctx, project.root));
	const child = spawn(command.file, command.args, {
		cwd: project.root,
		env: command.env as NodeJS.ProcessEnv,
		stdio: ["ignore", "pipe", "pipe"],
		// Own process group: stop() ends wrangler, workerd and OpenNext's npm exec together.
		detached: true,
	});
	let log = "";
	const collect = (chunk: string) => {
		log = (log + chunk).slice(-200_000);
		options.onOutput?.(chunk);
	};
	child.stdout?.setEncoding("utf8").on("data", collect);
	child.stderr?.setEncoding("utf8").on("data", collect);
	const exited = new Promise<number | null>((resolve) => {
		child.once("exit", (code) => resolve(code));
		child.once("error", (error) => {
			collect(`\n${error.message}\n`);
			resolve(null);
		});
	});
	const stop = async () => {
		const pid = child.pid;
		if (pid === undefined) return;
		if (child.exitCode === null && child.signalCode === null) {
			killGroup(pid, "SIGTERM");
			const timer = setTimeout(() => killGroup(pid, "SIGKILL"), 10_000);
			await exited;
			clearTimeout(timer);
		}
		// workerd may outlive wrangler in the same group.
		killGroup(pid, "SIGKILL");
	};
	const shownHost = host === "0.0.0.0" ? "127.0.0.1" : host;
	return {
		url: `http://${shownHost}:${port}`,
		pid: child.pid ?? -1,
		kind: plan.kind,
		child,
		log: () => log,
		exited,
		stop,
	};
}

export type ReadyOutcome =
	| { ok: true; ms: number }
	| {
			ok: false;
			reason: "exited" | "timeout" | "aborted";
			lastStatus?: number;
			lastError?: string;
	  };

/** Polls until `url` answers 200: an open port that answers 404 or 503 is not ready. */
export async function waitForHttp200(
	url: string,
	{
		timeoutMs,
		signal,
		exited,
	}: { timeoutMs: number; signal?: AbortSignal; exited?: Promise<unknown> },
): Promise<ReadyOutcome> {
	const started = Date.now();
	let gone = false;
	void exited?.then(() => {
		gone = true;
	});
	let lastStatus: number | undefined;
	let lastError: string | undefined;
	while (Date.now() - started < timeoutMs) {
		if (signal?.aborted) return { ok: false, reason: "aborted", lastStatus, lastError };
		if (gone) return { ok: false, reason: "exited", lastStatus, lastError };
		try {
			const response = await fetch(url, {
				signal: AbortSignal.timeout(10_000),
				redirect: "manual",
			});
			await response.arrayBuffer();
			lastStatus = response.status;
			if (response.status === 200) return { ok: true, ms: Date.now() - started };
		} catch (error) {
			lastError = (error as Error).message;
		}
		await new Promise((resolve) => setTimeout(resolve, 500));
	}
	return { ok: false, reason: "timeout", lastStatus, lastError };
}

/** Pure: the finding for an app that never answered 200. */
export function formatNotReady(url: string, outcome: ReadyOutcome, log: string): Finding {
	if (outcome.ok) throw new Error("formatNotReady called for a ready app");
	const last =
		outcome.lastStatus !== undefined
			? `it last answered ${outcome.lastStatus}`
			: `it never answered${outcome.lastError ? ` (${outcome.lastError})` : ""}`;
	const why =
		outcome.reason === "exited"
			? "the app's process exited before it answered 200"
			: outcome.reason === "aborted"
				? "interrupted before the app answered 200"
				: `no 200 from ${url} in time (e2e.readyTimeoutSeconds); ${last}. Set e2e.readyPath in workers-pipeline.jsonc to a path that answers 200 once the app is up`;
	return {
		code: "E2E_APP_NOT_READY",
		severity: "error",
		message: `${why}.\nLast output of the app:\n${tail(log, 40)}`,
	};
}

export interface LocalApp {
	app: RunningApp;
	database: LocalDatabase;
	build: StepResult;
	dispose: () => Promise<void>;
}

export interface StartLocalAppResult {
	local?: LocalApp;
	/** Set when the app could not be started; every process is already stopped. */
	failed?: { summary: string; findings: Finding[]; build?: StepResult };
}

/** Build (reused when unchanged), local D1 migrated + seeded, app started and answering 200. */
export async function startLocalApp(
	ctx: StepContext,
	options: { project: ProjectConfig; host: string; port?: number; persistDir?: string },
): Promise<StartLocalAppResult> {
	const { project } = options;
	// OpenNext apps are served from .open-next/ (built or reused); wrangler dev bundles a plain Worker itself.
	const build = isOpenNextProject(project.root)
		? await buildStep.run(ctx, { project })
		: makeStepResult("build", performance.now(), {
				ok: true,
				skipped: true,
				summary: "wrangler dev bundles the Worker",
				findings: [],
			});
	if (!build.ok) {
		return {
			failed: { summary: `build failed: ${build.summary}`, findings: build.findings, build },
		};
	}
	const ownDir = options.persistDir === undefined;
	const persistDir = options.persistDir ?? mkdtempSync(path.join(tmpdir(), "wp-e2e-d1-"));
	const removeDir = () => {
		if (ownDir) rmSync(persistDir, { recursive: true, force: true });
	};
	const database = await prepareLocalDatabase(ctx, { project, persistDir });
	if (database.findings.length > 0) {
		removeDir();
		return { failed: { summary: "local D1 not ready", findings: database.findings, build } };
	}
	const app = await startApp(ctx, { ...options, persistDir, expectedHead: database.head });
	const readyPath = project.settings.e2e.readyPath ?? project.settings.deploy.healthPath;
	ctx.progress(
		`${app.kind === "opennext" ? "opennextjs-cloudflare preview" : "wrangler dev"} on ${app.url}, waiting for 200 on ${readyPath}`,
	);
	const outcome = await waitForHttp200(`${app.url}${readyPath}`, {
		timeoutMs: project.settings.e2e.readyTimeoutSeconds * 1000,
		signal: ctx.signal,
		exited: app.exited,
	});
	const dispose = async () => {
		await app.stop();
		removeDir();
	};
	if (!outcome.ok) {
		await dispose();
		return {
			failed: {
				summary: `the app did not answer 200 on ${readyPath}`,
				findings: [formatNotReady(`${app.url}${readyPath}`, outcome, app.log())],
				build,
			},
		};
	}
	return { local: { app, database, build, dispose } };
}

export interface ServeArgs {
	project: ProjectConfig;
	host?: string;
	port?: number;
}

/** `serve`: the migrated + seeded app in the foreground until interrupted (a Dagger service's command). */
export const serveStep = defineStep<ServeArgs>({
	name: "serve",
	async run(ctx, { project, host = DEFAULT_SERVE_HOST, port }) {
		const started = performance.now();
		refusePagesProject(project, "serve");
		const result = await startLocalApp(ctx, { project, host, port });
		if (!result.local) {
			return makeStepResult("serve", started, {
				ok: false,
				summary: result.failed?.summary ?? "not started",
				findings: result.failed?.findings ?? [],
			});
		}
		const { app, dispose, database } = result.local;
		ctx.progress(
			`serving ${app.url} (host ${host}; local D1 migrated${database.seed ? `, seeded from ${path.relative(project.root, database.seed)}` : ""}); Ctrl-C stops it`,
		);
		const child = app.child;
		const aborted = new Promise<"aborted">((resolve) => {
			if (ctx.signal?.aborted) resolve("aborted");
			ctx.signal?.addEventListener("abort", () => resolve("aborted"), { once: true });
		});
		const why = await Promise.race([app.exited.then(() => "exited" as const), aborted]);
		const code = child.exitCode;
		await dispose();
		return makeStepResult("serve", started, {
			ok: why === "aborted",
			summary:
				why === "aborted"
					? `served ${app.url} until interrupted`
					: `the app exited on its own (exit ${code})`,
			findings:
				why === "aborted"
					? []
					: [
							{
								code: "SERVE_EXITED",
								severity: "error",
								message: `the app stopped while serving:\n${tail(app.log(), 40)}`,
							},
						],
		});
	},
});
