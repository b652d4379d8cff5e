import { type SpawnSyncReturns, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installEnv, packWorkersPipeline, REPO } from "../support/package.ts";

// The package as a user gets it (issue 9, item 1): `npm pack`, installed into another project
// with its own package manager, run as `npx workers-pipeline`, imported as a library.

const VERSION = (
	JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string }
).version;

let tarball: string;
const dirs: string[] = [];
afterAll(() => {
	for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function run(cwd: string, file: string, args: string[]): SpawnSyncReturns<string> {
	return spawnSync(file, args, { cwd, env: installEnv(), encoding: "utf8", timeout: 240_000 });
}

function consumerProject(): string {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-consumer-"));
	dirs.push(dir);
	writeFileSync(
		path.join(dir, "package.json"),
		JSON.stringify({ name: "consumer-app", private: true, type: "module" }, null, 2),
	);
	writeFileSync(
		path.join(dir, "wrangler.jsonc"),
		'{ "name": "consumer", "main": "src/index.ts", "d1_databases": [{ "binding": "DB" }] }\n',
	);
	mkdirSync(path.join(dir, "migrations"));
	writeFileSync(
		path.join(dir, "migrations/0001_init.sql"),
		"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
	);
	return dir;
}

const MANAGERS: [string, string, string[]][] = [
	["npm", "npm", ["install", "-D", "--prefer-offline", "--loglevel=error"]],
	["pnpm@9", "npx", ["-y", "pnpm@9", "add", "-D", "--prefer-offline"]],
	// pnpm 10 runs no dependency build scripts unless approved: the package must work without them.
	["pnpm@10", "npx", ["-y", "pnpm@10", "add", "-D", "--prefer-offline"]],
	[
		"yarn",
		"npx",
		["-y", "yarn@1", "add", "-D", "--prefer-offline", "--non-interactive", "--no-progress"],
	],
];

interface Install {
	app: string;
	done: Promise<{ status: number | null; output: string }>;
}

// The three installs run at once (mostly waiting on disk and the registry cache), each with a
// timeout that kills it; every test waits only for its own.
function startInstall(manager: string, file: string, args: string[]): Install {
	const app = consumerProject();
	const spec = manager === "yarn" ? `file:${tarball}` : tarball;
	const child = spawn(file, [...args, spec], {
		cwd: app,
		env: installEnv(),
		stdio: ["ignore", "pipe", "pipe"],
		timeout: 280_000,
	});
	let output = "";
	child.stdout.on("data", (c) => {
		output += c;
	});
	child.stderr.on("data", (c) => {
		output += c;
	});
	const done = new Promise<{ status: number | null; output: string }>((resolve) => {
		child.on("close", (status) => resolve({ status, output }));
		child.on("error", (error) => resolve({ status: null, output: `${output}\n${error.message}` }));
	});
	return { app, done };
}

const installs = new Map<string, Install>();
beforeAll(() => {
	tarball = packWorkersPipeline();
	for (const [manager, file, args] of MANAGERS)
		installs.set(manager, startInstall(manager, file, args));
}, 300_000);
afterAll(async () => {
	// Never leave an install running: wait for each (its own timeout bounds the wait).
	await Promise.all([...installs.values()].map((i) => i.done));
}, 300_000);

describe.each(MANAGERS)("installed from the tarball with %s", (manager, file, args) => {
	let app: string;
	beforeAll(async () => {
		const install = installs.get(manager) as Install;
		app = install.app;
		const { status, output } = await install.done;
		expect(status, `${manager} ${[file, ...args].join(" ")} failed:\n${output}`).toBe(0);
	}, 300_000);
	// The lockfile, library and typing checks need npm's layout: registered for npm only (not
	// skipped for the others, so no skip goes unexplained).
	const npmOnly: typeof it = ((name: string, fn: () => void) => {
		if (manager === "npm") it(name, fn);
	}) as typeof it;

	it("runs as `npx workers-pipeline` from compiled JavaScript", () => {
		const version = run(app, "npx", ["workers-pipeline", "--version"]);
		expect(version.stdout.trim()).toBe(VERSION);
		const help = run(app, "npx", ["workers-pipeline", "--help"]);
		expect(help.status).toBe(0);
		expect(help.stdout).toContain("Usage: workers-pipeline <command> [options]");
		const installed = path.join(app, "node_modules", "workers-pipeline");
		expect(existsSync(path.join(installed, "dist/ci/cli/main.js"))).toBe(true);
		expect(existsSync(path.join(installed, "ci")), "TypeScript sources are not shipped").toBe(
			false,
		);
	});

	it("lints the project's migrations: green, then red on a D1 violation", () => {
		const ok = run(app, "npx", ["workers-pipeline", "lint", "--json"]);
		expect(ok.status, ok.stderr).toBe(0);
		expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, command: "lint" });
		const bad = path.join(app, "migrations/0002_tx.sql");
		writeFileSync(
			bad,
			"BEGIN TRANSACTION;\nCREATE TABLE tags (id INTEGER PRIMARY KEY);\nCOMMIT;\n",
		);
		try {
			const red = run(app, "npx", ["workers-pipeline", "lint", "--json"]);
			expect(red.status).toBe(1);
			const report = JSON.parse(red.stdout) as { findings: { code: string; file: string }[] };
			expect(report.findings).toContainEqual(
				expect.objectContaining({ code: "D1_TRANSACTION", file: "migrations/0002_tx.sql" }),
			);
		} finally {
			rmSync(bad);
		}
	});
	npmOnly("brings no TypeScript loader and none of the example app's dependencies", () => {
		const lock = JSON.parse(readFileSync(path.join(app, "package-lock.json"), "utf8")) as {
			packages: Record<string, unknown>;
		};
		const names = Object.keys(lock.packages).map((p) => p.replace(/^.*node_modules\//, ""));
		for (const unwanted of [
			"tsx",
			"next",
			"react",
			"@opennextjs/cloudflare",
			"typescript",
			"vitest",
		]) {
			expect(names, unwanted).not.toContain(unwanted);
		}
		for (const wanted of ["wrangler", "better-sqlite3", "zod"]) expect(names).toContain(wanted);
	});

	npmOnly("exports the library surface", () => {
		const probe = run(app, process.execPath, [
			"--input-type=module",
			"-e",
			`const m = await import("workers-pipeline");
			 console.log(JSON.stringify({ runCli: typeof m.runCli, checksum: m.checksumOf("x\\r\\n") }));`,
		]);
		expect(probe.status, probe.stderr).toBe(0);
		// sha256("x\n"): line endings normalised, as the catalog checksums them.
		expect(JSON.parse(probe.stdout)).toEqual({
			runCli: "function",
			checksum: createHash("sha256").update("x\n").digest("hex"),
		});
	});

	npmOnly("types the library surface for a TypeScript consumer", () => {
		writeFileSync(
			path.join(app, "tsconfig.json"),
			JSON.stringify({
				compilerOptions: {
					module: "NodeNext",
					moduleResolution: "NodeNext",
					strict: true,
					noEmit: true,
					skipLibCheck: true,
					types: [],
				},
				include: ["index.ts"],
			}),
		);
		writeFileSync(
			path.join(app, "index.ts"),
			[
				'import { checksumOf, type Finding, runCli } from "workers-pipeline";',
				'const finding: Finding = { code: "D1_TRANSACTION", severity: "error", message: "m" };',
				'const sum: string = checksumOf("x");',
				"// @ts-expect-error runCli needs its arguments",
				"void runCli();",
				"void finding; void sum;",
				"",
			].join("\n"),
		);
		const tsc = run(app, process.execPath, [
			path.join(REPO, "node_modules/typescript/bin/tsc"),
			"-p",
			".",
		]);
		expect(tsc.status, `${tsc.stdout}${tsc.stderr}`).toBe(0);
	});

	npmOnly("exports workers-pipeline/health", () => {
		const probe = run(app, process.execPath, [
			"--input-type=module",
			"-e",
			'const m = await import("workers-pipeline/health"); console.log(typeof m.handleHealth);',
		]);
		expect(probe.stdout.trim()).toBe("function");
	});
});
