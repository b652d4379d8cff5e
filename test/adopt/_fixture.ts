import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
	cpSync,
	existsSync,
	mkdirSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { planWranglerDev } from "../../ci/steps/serve.ts";

// The fixture apps are driven the way a team would: this repository packed with `npm pack`,
// installed into a copy of the app with the app's own package manager, run through its bin.
export const REPO = path.resolve(import.meta.dirname, "../..");
export const FIXTURES = path.join(REPO, "test/fixtures/projects");
// Installs are kept between runs (keyed by the tarball and the app's manifest and lockfile),
// outside this repository: Node strips no types under node_modules/, and no package may resolve
// from this repository's node_modules by accident.
const CACHE =
	process.env.WORKERS_PIPELINE_ADOPT_CACHE ?? path.join(tmpdir(), "workers-pipeline-adopt");
export const PNPM = "pnpm@10.34.9";

const nodeDir = path.dirname(process.execPath);

/** The test's env minus what vitest and CI add, this Node first on PATH (wrangler and next need >= 22). */
export function baseEnv(): Record<string, string> {
	const env: Record<string, string> = {};
	for (const [name, value] of Object.entries(process.env)) {
		// NODE_ENV=test (vitest) breaks `next build`; CI and GitHub variables change what the CLI writes.
		if (
			value === undefined ||
			/^(VITEST|NODE_ENV$|NODE_OPTIONS$|GITHUB_|CLOUDFLARE_|WORKERS_PIPELINE_(?!NODEDIR)|TEST$)/.test(
				name,
			)
		)
			continue;
		env[name] = value;
	}
	return {
		...env,
		PATH: [nodeDir, process.env.PATH ?? ""].join(path.delimiter),
		// better-sqlite3 compiles against this Node's headers (scripts/node24.sh sets the same).
		...(process.env.WORKERS_PIPELINE_NODEDIR
			? { npm_config_nodedir: process.env.WORKERS_PIPELINE_NODEDIR }
			: {}),
		WRANGLER_SEND_METRICS: "false",
		NEXT_TELEMETRY_DISABLED: "1",
	};
}

export interface Run {
	code: number | null;
	stdout: string;
	stderr: string;
}

export function run(argv: string[], cwd: string, env: Record<string, string> = {}): Run {
	const [file, ...args] = argv as [string, ...string[]];
	const result = spawnSync(file, args, {
		cwd,
		env: { ...baseEnv(), ...env },
		encoding: "utf8",
		maxBuffer: 64 * 1024 * 1024,
		timeout: 5 * 60_000,
	});
	return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

/**
 * Like `run`, without blocking this process: for commands that talk to a server this test runs
 * (the loopback Cloudflare API), which a spawnSync would starve. Killed by its PID past 5 minutes.
 */
export function runAsync(
	argv: string[],
	cwd: string,
	env: Record<string, string> = {},
): Promise<Run> {
	const [file, ...args] = argv as [string, ...string[]];
	const child = spawn(file, args, {
		cwd,
		env: { ...baseEnv(), ...env },
		stdio: ["ignore", "pipe", "pipe"],
	});
	let stdout = "";
	let stderr = "";
	child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
		stdout += chunk;
	});
	child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
		stderr += chunk;
	});
	const timer = setTimeout(() => child.kill("SIGKILL"), 5 * 60_000);
	return new Promise((resolve, reject) => {
		child.once("error", reject);
		child.once("close", (code) => {
			clearTimeout(timer);
			resolve({ code, stdout, stderr });
		});
	});
}

function must(result: Run, what: string): Run {
	if (result.code !== 0) {
		throw new Error(`${what} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
	}
	return result;
}

let tarball: string | undefined;

/** `npm pack` of this repository, once per test file. */
export function packRepo(): string {
	if (tarball) return tarball;
	const out = path.join(CACHE, "pack");
	rmSync(out, { recursive: true, force: true });
	mkdirSync(out, { recursive: true });
	must(run(["npm", "pack", "--pack-destination", out, "--silent"], REPO), "npm pack");
	const file = readdirSync(out).find((f) => f.endsWith(".tgz"));
	if (!file) throw new Error(`npm pack wrote no tarball into ${out}`);
	tarball = path.join(out, file);
	return tarball;
}

export type Manager = "npm" | "pnpm";

const LOCKFILE: Record<Manager, string> = { npm: "package-lock.json", pnpm: "pnpm-lock.yaml" };
const pmArgv = (pm: Manager): string[] => (pm === "npm" ? ["npm"] : ["npx", "--yes", PNPM]);

/** Installs the fixture's dependencies plus the tarball with its own package manager; cached. */
function installed(name: string, pm: Manager, pack: string): string {
	const source = path.join(FIXTURES, name);
	const key = createHash("sha256")
		.update(readFileSync(pack))
		.update(readFileSync(path.join(source, "package.json")))
		.update(readFileSync(path.join(source, LOCKFILE[pm])))
		.digest("hex")
		.slice(0, 16);
	const dir = path.join(CACHE, `${name}-${key}`);
	if (existsSync(path.join(dir, ".installed")) && existsSync(path.join(dir, "node_modules"))) {
		return dir;
	}
	for (const old of existsSync(CACHE) ? readdirSync(CACHE) : []) {
		if (old.startsWith(`${name}-`)) rmSync(path.join(CACHE, old), { recursive: true, force: true });
	}
	cpSync(source, dir, { recursive: true });
	const add =
		pm === "npm"
			? ["npm", "install", "--no-audit", "--no-fund", "-D", pack]
			: [...pmArgv(pm), "add", "-D", pack];
	must(run(add, dir), `${add.join(" ")} in ${name}`);
	writeFileSync(path.join(dir, ".installed"), new Date().toISOString());
	return dir;
}

export interface FixtureCopy {
	dir: string;
	/** `<pm> exec workers-pipeline <args>` in the copy. */
	cli(args: string[], env?: Record<string, string>): Run;
	/** `cli`, without blocking this process (for servers the test itself runs). */
	cliAsync(args: string[], env?: Record<string, string>): Promise<Run>;
	/** `<pm> exec <argv>`: any bin the app installed. */
	exec(argv: string[]): Run;
	git(...args: string[]): Run;
	read(rel: string): string;
	/** Gives the installed node_modules back to the cache. */
	release(): void;
}

/**
 * A clean copy of the fixture as a fresh clone after `install`: its files, the manifest and
 * lockfile with workers-pipeline added, node_modules, a git repository with one commit.
 */
export function freshCopy(name: string, pm: Manager): FixtureCopy {
	const pack = packRepo();
	const cached = installed(name, pm, pack);
	const dir = path.join(CACHE, `${name}-work`);
	rmSync(dir, { recursive: true, force: true });
	cpSync(path.join(FIXTURES, name), dir, { recursive: true });
	for (const file of ["package.json", LOCKFILE[pm]]) {
		cpSync(path.join(cached, file), path.join(dir, file));
	}
	// Moved, not copied: a Next app's node_modules is large; release() moves it back.
	renameSync(path.join(cached, "node_modules"), path.join(dir, "node_modules"));
	rmSync(path.join(dir, "node_modules/.cache"), { recursive: true, force: true });
	const git = (...args: string[]) =>
		run(["git", ...args], dir, {
			GIT_AUTHOR_NAME: "fixture",
			GIT_AUTHOR_EMAIL: "fixture@example.com",
			GIT_COMMITTER_NAME: "fixture",
			GIT_COMMITTER_EMAIL: "fixture@example.com",
		});
	must(git("init", "-q", "-b", "main"), "git init");
	must(git("add", "-A"), "git add");
	must(git("commit", "-qm", "the app before workers-pipeline"), "git commit");
	const cliArgv = (args: string[]) =>
		pm === "npm"
			? ["npx", "workers-pipeline", ...args]
			: [...pmArgv(pm), "exec", "workers-pipeline", ...args];
	return {
		dir,
		cli: (args, env) => run(cliArgv(args), dir, env),
		cliAsync: (args, env) => runAsync(cliArgv(args), dir, env),
		exec: (argv) => run(pm === "npm" ? ["npx", ...argv] : [...pmArgv(pm), "exec", ...argv], dir),
		git,
		read: (rel) => readFileSync(path.join(dir, rel), "utf8"),
		release() {
			if (existsSync(path.join(dir, "node_modules"))) {
				rmSync(path.join(cached, "node_modules"), { recursive: true, force: true });
				renameSync(path.join(dir, "node_modules"), path.join(cached, "node_modules"));
			}
			rmSync(dir, { recursive: true, force: true });
		},
	};
}

/** The `npx workers-pipeline …` lines of the README's "Use it on your app" quickstart, as argv. */
export function readmeQuickstart(): string[][] {
	const readme = readFileSync(path.join(REPO, "README.md"), "utf8");
	const section = readme.split(/^## /m).find((s) => s.startsWith("Use it on your app"));
	const block = section && /```sh\n([\s\S]*?)```/.exec(section)?.[1];
	if (!block) throw new Error("README.md has no ```sh block under ## Use it on your app");
	return block
		.split("\n")
		.map((line) => line.trim())
		.filter((line) => line.startsWith("npx workers-pipeline "))
		.map((line) => line.slice("npx workers-pipeline ".length).split(/\s+/));
}

export interface LocalWorkers {
	/** `wrangler dev --config <config>` with the app's own wrangler; resolves once `readyPath` answers. */
	start(options?: { config?: string }): Promise<{ url: string; stop: () => Promise<void> }>;
	/** Stops every server `start` began, each by its process group's id. */
	stopAll(): Promise<void>;
}

/** The copy served by its own installed wrangler on 127.0.0.1, with its local D1 in `persistDir`. */
export function localWorkers(options: {
	dir: string;
	env: Record<string, string>;
	persistDir: string;
	readyPath: string;
	freePort: () => Promise<number>;
}): LocalWorkers {
	const { dir, env, persistDir, readyPath, freePort } = options;
	const wrangler = path.join(dir, "node_modules/wrangler/bin/wrangler.js");
	const stops = new Set<() => Promise<void>>();
	const start = async ({ config = "wrangler.toml" }: { config?: string } = {}) => {
		const [port, inspector] = [await freePort(), await freePort()];
		const child = spawn(
			process.execPath,
			planWranglerDev({
				wranglerBin: wrangler,
				config,
				host: "127.0.0.1",
				port,
				inspectorPort: inspector,
				persistDir,
			}),
			// Its own process group: workerd is stopped with wrangler, by the group's id.
			{
				cwd: dir,
				env: { ...baseEnv(), ...env },
				stdio: ["ignore", "pipe", "pipe"],
				detached: true,
			},
		);
		let log = "";
		child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
			log += chunk;
		});
		child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
			log += chunk;
		});
		const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
		const kill = (signal: NodeJS.Signals) => {
			try {
				if (child.pid) process.kill(-child.pid, signal);
			} catch {
				// Already gone.
			}
		};
		const stop = async () => {
			stops.delete(stop);
			if (child.exitCode === null && child.signalCode === null) {
				kill("SIGTERM");
				const timer = setTimeout(() => kill("SIGKILL"), 10_000);
				await exited;
				clearTimeout(timer);
			}
			kill("SIGKILL");
		};
		stops.add(stop);
		const url = `http://127.0.0.1:${port}`;
		// A Next app on OpenNext takes a while to start on a loaded machine (test/app waits as long).
		const deadline = Date.now() + 180_000;
		while (Date.now() < deadline) {
			if (child.exitCode !== null || child.signalCode !== null) break;
			try {
				await (
					await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(5_000) })
				).arrayBuffer();
				return { url, stop };
			} catch {
				await new Promise((resolve) => setTimeout(resolve, 300));
			}
		}
		await stop();
		throw new Error(
			`wrangler dev --config ${config} did not answer ${readyPath}:\n${log.slice(-4000)}`,
		);
	};
	return {
		start,
		stopAll: async () => {
			for (const stop of [...stops]) await stop();
		},
	};
}
