// The example app for the end-to-end suites: ONE OpenNext build per `npm test` run, shared by
// test/app and test/deploy, copied into throwaway projects, served by `wrangler dev` on 127.0.0.1
// against a local D1 migrated with the real migrations/.
//
// How the single build works. Vitest runs each test file in its own process, possibly at the same
// time, and `.open-next/` lives in the repository root. So:
// - Every use of the root build (build, then copy into a temp project) holds a lock file
//   (node_modules/.cache/workers-pipeline/e2e-app-build.lock, created with O_EXCL; a lock whose
//   holder PID is gone is taken over). Tests then serve and deploy their own copy, so a later
//   rebuild cannot change what a running test serves.
// - A build records the CLI's result in e2e-app-build.json next to the lock, keyed by the test
//   run (the vitest main process: PID + start time) and by the stamp it produced.
// - `reuse: "this-run"` (test/app, which must see `build --no-cache` through the CLI) reuses only a
//   build made by the same run; `reuse: "matching-stamp"` (test/deploy) also reuses an older build
//   whose stamp matches the current version and inputs. Whoever comes first builds; the other one
//   reuses it, so a full `npm test` builds once.
import { type ChildProcess, spawn } from "node:child_process";
import {
	closeSync,
	cpSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	openSync,
	readdirSync,
	readFileSync,
	rmSync,
	unlinkSync,
	writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { resolveWranglerBin, runWrangler } from "../../ci/cloudflare/wrangler.ts";
import type { ProcessResult } from "../../ci/process.ts";
import {
	BUILD_DIR,
	type BuildStamp,
	buildVersion,
	hashBuildInputs,
	readBuildStamp,
} from "../../ci/steps/build.ts";
import { planWranglerDev } from "../../ci/steps/serve.ts";
import { captureCli } from "../support/cli.ts";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BUILD_TIMEOUT_MS = 15 * 60_000;
export const READY_TIMEOUT_MS = 180_000;
const CACHE_DIR = path.join(REPO, "node_modules", ".cache", "workers-pipeline");
const LOCK_FILE = path.join(CACHE_DIR, "e2e-app-build.lock");
const RECORD_FILE = path.join(CACHE_DIR, "e2e-app-build.json");
const LOCK_WAIT_MS = BUILD_TIMEOUT_MS + 5 * 60_000;

/** The migration files of the example app, in the order wrangler applies them. */
export const MIGRATIONS: readonly string[] = readdirSync(path.join(REPO, "migrations"))
	.filter((name) => /^\d+_[^/\\]+\.sql$/.test(name))
	.sort();
export const NEWEST_MIGRATION = MIGRATIONS.at(-1) ?? "";

/** What the root build step said, recorded by whichever test file ran it. */
export interface BuildRecord {
	runId: string;
	version: string;
	inputsHash: string;
	builtAt: string;
	code: number;
	stdout: string;
	stderr: string;
	/** How many builds this test run made so far (1 unless the commit or inputs changed mid-run). */
	buildsThisRun: number;
}

export interface SharedBuild {
	stamp: BuildStamp;
	record: BuildRecord;
	/** True when this process ran the build; false when it reused one. */
	builtHere: boolean;
}

/** The build's env: the caller's, minus anything that would write reports or change the version. */
function buildEnv(): Record<string, string | undefined> {
	const env: Record<string, string | undefined> = { ...process.env, NEXT_TELEMETRY_DISABLED: "1" };
	for (const name of [
		"CI",
		"GITHUB_STEP_SUMMARY",
		"WORKERS_PIPELINE_VERSION",
		"WORKERS_PIPELINE_EXPECTED_MIGRATION",
		"CLOUDFLARE_API_TOKEN",
		"CLOUDFLARE_API_BASE_URL",
	])
		delete env[name];
	return env;
}

/** The version `build` stamps in the repository right now (GITHUB_SHA wins, as in the step). */
// What `build` stamps: the commit, `<sha>-dirty` in a checkout with uncommitted changes.
export const currentVersion = (): string => buildVersion(REPO, buildEnv());

/** The vitest run this worker belongs to: the parent process, with its start time against PID reuse. */
function testRunId(): string {
	let started = "?";
	try {
		const stat = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
		started = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "?";
	} catch {
		// No /proc: the PID alone.
	}
	return `${process.ppid}:${started}`;
}

const alive = (pid: number): boolean => {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === "EPERM";
	}
};

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `fn` holding the root build lock (O_EXCL file with the holder's PID; dead holders are taken over). */
export async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
	mkdirSync(CACHE_DIR, { recursive: true });
	const deadline = Date.now() + LOCK_WAIT_MS;
	for (;;) {
		try {
			const fd = openSync(LOCK_FILE, "wx");
			writeFileSync(fd, `${process.pid}\n`);
			closeSync(fd);
			break;
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
		}
		let holder = Number.NaN;
		try {
			holder = Number.parseInt(readFileSync(LOCK_FILE, "utf8"), 10);
		} catch {
			continue; // Released meanwhile.
		}
		if (Number.isInteger(holder) && !alive(holder)) {
			rmSync(LOCK_FILE, { force: true });
			continue;
		}
		if (Date.now() > deadline)
			throw new Error(`${LOCK_FILE} is still held by PID ${holder}; is another build stuck?`);
		await pause(1000);
	}
	const release = () => {
		try {
			if (readFileSync(LOCK_FILE, "utf8").trim() === String(process.pid)) unlinkSync(LOCK_FILE);
		} catch {
			// Already gone.
		}
	};
	process.once("exit", release);
	try {
		return await fn();
	} finally {
		process.removeListener("exit", release);
		release();
	}
}

function readRecord(): BuildRecord | undefined {
	try {
		return JSON.parse(readFileSync(RECORD_FILE, "utf8")) as BuildRecord;
	} catch {
		return undefined;
	}
}

/** `workers-pipeline build --no-cache` in the repository root, through the CLI in-process. */
async function buildNow(runId: string): Promise<SharedBuild> {
	const { code, stdout, stderr } = await captureCli(["build", "--no-cache"], {
		env: buildEnv(),
		cwd: REPO,
	});
	const stamp = readBuildStamp(REPO);
	if (code !== 0 || !stamp)
		throw new Error(`workers-pipeline build exited ${code}\n${stdout}\n${stderr.slice(-6000)}`);
	const previous = readRecord();
	const record: BuildRecord = {
		runId,
		buildsThisRun: previous?.runId === runId ? (previous.buildsThisRun ?? 0) + 1 : 1,
		version: stamp.version,
		inputsHash: stamp.inputsHash,
		builtAt: stamp.builtAt,
		code,
		stdout,
		stderr,
	};
	writeFileSync(RECORD_FILE, `${JSON.stringify(record, null, 2)}\n`);
	return { stamp, record, builtHere: true };
}

/**
 * Makes sure `.open-next/` holds a build of the current version, building at most once per test run,
 * then copies the app (wrangler.jsonc, migrations/, .open-next/) into `dest` while still holding the
 * lock.
 */
export async function sharedBuild(
	reuse: "this-run" | "matching-stamp",
	dest?: string,
): Promise<SharedBuild> {
	return withBuildLock(async () => {
		const runId = testRunId();
		const version = currentVersion();
		const inputsHash = hashBuildInputs(REPO, version);
		const stamp = readBuildStamp(REPO);
		const record = readRecord();
		const current =
			stamp?.version === version &&
			stamp.inputsHash === inputsHash &&
			existsSync(path.join(REPO, BUILD_DIR, "worker.js"));
		const recorded = current && record?.builtAt === stamp?.builtAt ? record : undefined;
		let result: SharedBuild;
		if (current && stamp && recorded && recorded.runId === runId) {
			result = { stamp, record: recorded, builtHere: false };
		} else if (current && stamp && reuse === "matching-stamp") {
			const found: BuildRecord = recorded ?? {
				runId: "unknown",
				version,
				inputsHash,
				builtAt: stamp.builtAt,
				code: 0,
				stdout: "",
				stderr: "",
				buildsThisRun: 0,
			};
			result = { stamp, record: found, builtHere: false };
		} else {
			result = await buildNow(runId);
		}
		if (dest) copyApp(dest);
		return result;
	});
}

/** The files a deploy or `wrangler dev` needs: wrangler.jsonc, migrations/ and the build. */
function copyApp(dest: string): void {
	mkdirSync(dest, { recursive: true });
	cpSync(path.join(REPO, "wrangler.jsonc"), path.join(dest, "wrangler.jsonc"));
	cpSync(path.join(REPO, "migrations"), path.join(dest, "migrations"), { recursive: true });
	cpSync(path.join(REPO, BUILD_DIR), path.join(dest, BUILD_DIR), { recursive: true });
}

export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

/** A process group started by a test; `stop()` ends it by PID and waits for it. */
export interface Started {
	child: ChildProcess;
	log: () => string;
	stop: () => Promise<void>;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
	try {
		process.kill(-pid, signal);
	} catch {
		// Already gone.
	}
}

export interface ServeOptions {
	vars?: Record<string, string>;
	/** The wrangler config to serve, relative to the copy (default wrangler.jsonc). */
	config?: string;
}

/**
 * A local app: a temp copy of the built app, a temp HOME and a local D1 persisted in a temp dir,
 * served by `wrangler dev` on 127.0.0.1. Every wrangler it runs is stopped by `dispose()`.
 */
export interface LocalApp {
	dir: string;
	persistDir: string;
	env: Record<string, string | undefined>;
	/** `wrangler <args>` in the copy; throws on a non-zero exit. */
	wrangler(args: readonly string[], timeoutMs?: number): Promise<ProcessResult>;
	/** `wrangler d1 migrations apply DB --local` with the copy's real migrations. */
	migrateLocal(): Promise<ProcessResult>;
	/** SQL against the local D1 (`wrangler d1 execute DB --local --command`). */
	sql(command: string): Promise<ProcessResult>;
	/** Starts `wrangler dev` (with `--var NAME:value` for each of `vars`) and waits until `/api/health` answers; returns the base URL. */
	serve(options?: ServeOptions): Promise<string>;
	/** Like `serve`, with a `stop()` for this one server. */
	start(options?: ServeOptions): Promise<{ url: string; stop: () => Promise<void> }>;
	/** Stops every `wrangler dev` this app started. */
	stopServers(): Promise<void>;
	dispose(): Promise<void>;
}

export async function createLocalApp(
	reuse: "this-run" | "matching-stamp",
): Promise<LocalApp & { build: SharedBuild }> {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-app-"));
	const persistDir = mkdtempSync(path.join(tmpdir(), "wp-app-d1-"));
	const home = mkdtempSync(path.join(tmpdir(), "wp-app-home-"));
	const controller = new AbortController();
	const servers: Started[] = [];
	const env: Record<string, string | undefined> = {
		PATH: process.env.PATH,
		HOME: home,
		XDG_CONFIG_HOME: path.join(home, ".config"),
		WRANGLER_SEND_METRICS: "false",
		WRANGLER_LOG_PATH: path.join(home, "wrangler-logs"),
		NO_COLOR: "1",
		CI: "true",
	};
	const dispose = async () => {
		controller.abort();
		await Promise.all(servers.map((s) => s.stop()));
		for (const d of [dir, persistDir, home]) rmSync(d, { recursive: true, force: true });
	};
	let build: SharedBuild;
	try {
		build = await sharedBuild(reuse, dir);
	} catch (error) {
		await dispose();
		throw error;
	}

	const wrangler = async (args: readonly string[], timeoutMs = 180_000) => {
		const result = await runWrangler({
			args,
			cwd: dir,
			env,
			timeoutMs,
			signal: controller.signal,
		});
		if (result.failed)
			throw new Error(
				`wrangler ${args.join(" ")} exited ${result.exitCode ?? result.signal}\n${(result.stdout + result.stderr).slice(-4000)}`,
			);
		return result;
	};
	// The running `wrangler dev` and a `wrangler d1 … --local` are two workerd processes on one
	// SQLite file, and workerd sets no busy timeout (workerd src/workerd/util/sqlite.c++ opens with
	// sqlite3_open_v2 alone), so a lock held by the other fails at once with SQLITE_BUSY. A retry is
	// safe: `d1 execute --local` runs its statements as one D1 batch, a single transaction (wrangler
	// src/d1/execute.ts executeLocally → db.batch), and `d1 migrations apply` reads the ledger anew.
	const wranglerOnLocalD1 = async (args: readonly string[]) => {
		for (let attempt = 1; ; attempt++) {
			try {
				return await wrangler(args);
			} catch (error) {
				if (attempt >= 5 || !String(error).includes("SQLITE_BUSY")) throw error;
				await pause(attempt * 1000);
			}
		}
	};

	const start = async ({ vars = {}, config = "wrangler.jsonc" }: ServeOptions = {}) => {
		const port = await freePort();
		const inspector = await freePort();
		const child = spawn(
			process.execPath,
			planWranglerDev({
				wranglerBin: resolveWranglerBin(),
				config,
				host: "127.0.0.1",
				port,
				inspectorPort: inspector,
				persistDir,
				vars,
			}),
			{ cwd: dir, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
		);
		let log = "";
		child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
			log += chunk;
		});
		child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
			log += chunk;
		});
		const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
		const stop = async () => {
			if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
			killGroup(child.pid, "SIGTERM");
			const timer = setTimeout(() => child.pid && killGroup(child.pid, "SIGKILL"), 10_000);
			await exited;
			clearTimeout(timer);
			// workerd may outlive wrangler in the same group.
			killGroup(child.pid, "SIGKILL");
		};
		servers.push({ child, log: () => log, stop });
		const stopOne = async () => {
			servers.splice(servers.findIndex((s) => s.child === child) >>> 0, 1);
			await stop();
		};
		const url = `http://127.0.0.1:${port}`;
		const deadline = Date.now() + READY_TIMEOUT_MS;
		while (Date.now() < deadline) {
			if (child.exitCode !== null || child.signalCode !== null)
				throw new Error(`wrangler dev exited early\n${log.slice(-4000)}`);
			try {
				const response = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(10_000) });
				await response.arrayBuffer();
				return { url, stop: stopOne };
			} catch {
				await pause(500);
			}
		}
		throw new Error(`wrangler dev did not answer ${url} in time\n${log.slice(-4000)}`);
	};

	return {
		dir,
		persistDir,
		env,
		build,
		wrangler,
		migrateLocal: () =>
			wranglerOnLocalD1(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir]),
		sql: (command) =>
			wranglerOnLocalD1([
				"d1",
				"execute",
				"DB",
				"--local",
				"--persist-to",
				persistDir,
				"--command",
				command,
				"--yes",
			]),
		serve: async (options) => (await start(options)).url,
		start,
		stopServers: async () => {
			await Promise.all(servers.splice(0).map((s) => s.stop()));
		},
		dispose,
	};
}

export interface Health {
	status: number;
	cacheControl: string | null;
	body: Record<string, unknown>;
}

export async function getHealth(baseUrl: string): Promise<Health> {
	const response = await fetch(`${baseUrl}/api/health`, { signal: AbortSignal.timeout(30_000) });
	return {
		status: response.status,
		cacheControl: response.headers.get("cache-control"),
		body: (await response.json()) as Record<string, unknown>,
	};
}
