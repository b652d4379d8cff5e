// Shared setup for the migrate bad-input and concurrency tests (beside _support.ts): temp projects holding copies of
// the example migrations, and in-process / spawned CLI runs against the loopback Cloudflare API.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type CliRun, captureCli } from "../../support/cli.ts";
import type { CloudflareApi } from "../../support/cloudflare-api.ts";

export type { CliRun };

export const REPO = path.resolve(import.meta.dirname, "../../..");
export const BIN = path.join(REPO, "bin/workers-pipeline.js");
export const MIGRATIONS_DIR = path.join(REPO, "migrations");
export const TOKEN = "loopback-token-migrate-inputs-0123456789abcdef";
export const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";
export const ALL_MIGRATIONS = [
	"0001_create_users.sql",
	"0002_create_sessions.sql",
	"0003_create_projects.sql",
	"0004_create_content.sql",
	"0005_create_content_metrics.sql",
	"0006_rebuild_projects_add_archived.sql",
	"0007_seed_demo_content.sql",
] as const;
/** A JS stack frame as Node prints it. */
export const STACK_LINE = /^ {4}at /m;

export type Files = Record<string, string | Buffer | null>;

export interface Project {
	dir: string;
	uuid: string;
	databaseName: string;
}

const dirs: string[] = [];

/** Removes every temp project made so far. */
export function removeProjects(): void {
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export const stagingWrangler = (uuid: string, databaseName: string) => ({
	name: "migrate-inputs",
	main: "src/index.ts",
	compatibility_date: "2026-06-01",
	d1_databases: [
		{ binding: "DB", database_name: `${databaseName}-dev`, database_id: randomUUID() },
	],
	env: {
		staging: {
			d1_databases: [{ binding: "DB", database_name: databaseName, database_id: uuid }],
		},
	},
});

/**
 * A temp project with the given example migrations copied into migrations/, a wrangler.jsonc whose
 * env.staging binds DB to a database registered in `api`, and lint without biome/tsc. `files`
 * (paths relative to the project) adds, replaces or deletes (null) files afterwards.
 */
export function makeProject(
	api: CloudflareApi,
	{
		migrations = ALL_MIGRATIONS,
		files = {},
		wrangler,
	}: {
		migrations?: readonly string[];
		files?: Files;
		wrangler?: (uuid: string, databaseName: string) => unknown;
	} = {},
): Project {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-migrate-inputs-"));
	dirs.push(dir);
	const uuid = randomUUID();
	const databaseName = `inputs-${uuid.slice(0, 8)}`;
	api.addDatabase({ uuid, name: databaseName });
	mkdirSync(path.join(dir, "migrations"));
	for (const name of migrations) {
		cpSync(path.join(MIGRATIONS_DIR, name), path.join(dir, "migrations", name));
	}
	writeFileSync(
		path.join(dir, "wrangler.jsonc"),
		JSON.stringify((wrangler ?? stagingWrangler)(uuid, databaseName), null, "\t"),
	);
	writeFileSync(
		path.join(dir, "workers-pipeline.jsonc"),
		'{ "lint": { "biome": false, "typecheck": false } }\n',
	);
	writeFiles(dir, files);
	return { dir, uuid, databaseName };
}

export function writeFiles(dir: string, files: Files): void {
	for (const [name, content] of Object.entries(files)) {
		const file = path.join(dir, name);
		if (content === null) rmSync(file, { recursive: true, force: true });
		else writeFileSync(file, content);
	}
}

export const apiEnv = (api: CloudflareApi): Record<string, string> => ({
	CLOUDFLARE_API_TOKEN: TOKEN,
	CLOUDFLARE_ACCOUNT_ID: ACCOUNT_ID,
	CLOUDFLARE_API_BASE_URL: api.url,
});

/** The CLI in-process, in `dir`, with only PATH/USER and the given environment. */
export const cli = (
	argv: readonly string[],
	dir: string,
	env: Record<string, string | undefined>,
): Promise<CliRun> => captureCli(argv, { cwd: dir, env: { USER: "migrate-inputs", ...env } });

const running = new Set<number>();

/** SIGKILLs, by PID, every spawned CLI that is still running (test cleanup). */
export function stopSpawned(): void {
	for (const pid of running) {
		try {
			process.kill(pid, "SIGKILL");
		} catch {
			// already gone
		}
	}
	running.clear();
}

export interface Spawned {
	pid: number;
	done: Promise<CliRun & { signal: NodeJS.Signals | null }>;
}

/** The real bin as a child process (same Node as the tests), in `dir`. */
export function spawnCli(
	argv: readonly string[],
	dir: string,
	env: Record<string, string | undefined>,
): Spawned {
	// bin/ re-executes itself under .tools/node on Node < 22: the PID would not be the CLI's.
	if (Number(process.versions.node.split(".")[0]) < 22) {
		throw new Error("run the tests with Node >= 22 (bash scripts/node24.sh vitest ...)");
	}
	const child = spawn(process.execPath, [BIN, ...argv], {
		cwd: dir,
		env: { PATH: process.env.PATH, HOME: process.env.HOME, USER: "migrate-inputs", ...env },
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
	const { pid } = child;
	if (pid === undefined) throw new Error(`cannot start ${process.execPath} ${BIN}`);
	running.add(pid);
	const done = new Promise<CliRun & { signal: NodeJS.Signals | null }>((resolve, reject) => {
		child.once("error", reject);
		child.once("close", (code, signal) => {
			running.delete(pid);
			resolve({ code: code ?? -1, signal, stdout, stderr });
		});
	});
	return { pid, done };
}

/** Names in wrangler's ledger, in apply order. */
export const ledgerNames = (api: CloudflareApi, uuid: string): string[] =>
	api
		.database(uuid)
		.prepare("SELECT name FROM d1_migrations ORDER BY id")
		.pluck()
		.all() as string[];

export const auditNames = (api: CloudflareApi, uuid: string): string[] =>
	api
		.database(uuid)
		.prepare("SELECT name FROM workers_pipeline_migrations ORDER BY name")
		.pluck()
		.all() as string[];

export const lockRows = (api: CloudflareApi, uuid: string) =>
	api
		.database(uuid)
		.prepare("SELECT run_id, owner, expires_at FROM workers_pipeline_lock")
		.all() as {
		run_id: string;
		owner: string;
		expires_at: number;
	}[];

export const tableNames = (api: CloudflareApi, uuid: string): string[] =>
	api
		.database(uuid)
		.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
		.pluck()
		.all() as string[];
