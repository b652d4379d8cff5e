// End to end: build the example app with OpenNext, serve the built Worker with `wrangler dev`
// against a throwaway local D1, and check the health endpoint and the home page for real.
import { type ChildProcess, spawn } from "node:child_process";
import {
	existsSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	rmSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseJsonc } from "jsonc-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const node24 = path.join(root, "scripts", "node24.sh");
const BUILD_TIMEOUT_MS = 15 * 60_000;
const READY_TIMEOUT_MS = 180_000;

// Throwaway schema for the local D1, as described for the example app. A colleague will switch
// this to the real migrations in migrations/.
const SCHEMA_SQL = `
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, display_name TEXT, created_at TEXT);
CREATE TABLE projects (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES users (id), name TEXT NOT NULL, slug TEXT UNIQUE, archived INTEGER NOT NULL DEFAULT 0, created_at TEXT);
CREATE TABLE content (id INTEGER PRIMARY KEY, project_id INTEGER REFERENCES projects (id), title TEXT NOT NULL, body TEXT, status TEXT NOT NULL DEFAULT 'draft', created_at TEXT, updated_at TEXT);
CREATE TABLE content_metrics (content_id INTEGER PRIMARY KEY REFERENCES content (id), views INTEGER NOT NULL DEFAULT 0, likes INTEGER NOT NULL DEFAULT 0);
CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id INTEGER REFERENCES users (id), expires_at TEXT, created_at TEXT);
`;

type RunResult = { code: number | null; output: string };

function run(
	command: string,
	args: string[],
	env: NodeJS.ProcessEnv,
	timeoutMs: number,
): Promise<RunResult> {
	return new Promise((resolve, reject) => {
		const child = spawn(command, args, {
			cwd: root,
			env,
			stdio: ["ignore", "pipe", "pipe"],
			detached: true,
		});
		let output = "";
		child.stdout.on("data", (chunk: Buffer) => {
			output += chunk.toString();
		});
		child.stderr.on("data", (chunk: Buffer) => {
			output += chunk.toString();
		});
		const timer = setTimeout(() => {
			killGroup(child);
			reject(
				new Error(
					`${command} ${args.join(" ")} timed out after ${timeoutMs} ms\n${output.slice(-4000)}`,
				),
			);
		}, timeoutMs);
		child.on("error", (error) => {
			clearTimeout(timer);
			reject(error);
		});
		child.on("close", (code) => {
			clearTimeout(timer);
			resolve({ code, output });
		});
	});
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): void {
	if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
	try {
		process.kill(-child.pid, signal);
	} catch {
		// Already gone.
	}
}

function freePort(): Promise<number> {
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

function sqlString(value: string): string {
	return `'${value.replaceAll("'", "''")}'`;
}

/** Migration file names in numeric order, as next.config.ts sees them. */
function migrationFiles(dir: string): string[] {
	if (!existsSync(dir)) return [];
	return readdirSync(dir)
		.filter((name) => /^\d+_[^/\\]+\.sql$/.test(name))
		.sort(
			(a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10) || (a < b ? -1 : a > b ? 1 : 0),
		);
}

function dbBinding(): { migrations_dir?: string; migrations_table?: string } {
	const config = parseJsonc(readFileSync(path.join(root, "wrangler.jsonc"), "utf8")) as {
		d1_databases?: { binding: string; migrations_dir?: string; migrations_table?: string }[];
	};
	return config.d1_databases?.find((entry) => entry.binding === "DB") ?? {};
}

describe("example app: OpenNext build served by wrangler dev", () => {
	const version = `e2e-${Date.now().toString(36)}`;
	const binding = dbBinding();
	const ledger = binding.migrations_table ?? "d1_migrations";
	const onDisk = migrationFiles(path.join(root, binding.migrations_dir ?? "migrations"));
	// With no migration files yet, pin the expected name through next.config's override.
	const fixtureLedger = ["0001_e2e_base.sql", "0002_e2e_fixture.sql"];
	const ledgerRows = onDisk.length > 0 ? onDisk : fixtureLedger;
	const expected = ledgerRows[ledgerRows.length - 1] ?? "";
	const title = `E2E published ${version}`;
	const draftTitle = `E2E draft ${version}`;
	const projectName = `E2E project ${version}`;

	const tempDirs: string[] = [];
	let persistDir = "";
	let workDir = "";
	let server: ChildProcess | undefined;
	let serverLog = "";
	let baseUrl = "";
	const env: NodeJS.ProcessEnv = {
		...process.env,
		NEXT_TELEMETRY_DISABLED: "1",
		WRANGLER_SEND_METRICS: "false",
		CI: "true",
	};

	async function wrangler(args: string[], timeoutMs = 180_000): Promise<string> {
		const result = await run(
			"bash",
			[node24, "npx", "--no-install", "wrangler", ...args],
			env,
			timeoutMs,
		);
		if (result.code !== 0) {
			throw new Error(
				`wrangler ${args.join(" ")} exited ${result.code}\n${result.output.slice(-4000)}`,
			);
		}
		return result.output;
	}

	async function executeSql(sql: string): Promise<void> {
		const file = path.join(workDir, `sql-${Date.now()}-${Math.random().toString(36).slice(2)}.sql`);
		writeFileSync(file, sql);
		await wrangler([
			"d1",
			"execute",
			"DB",
			"--local",
			"--persist-to",
			persistDir,
			"--file",
			file,
			"--yes",
		]);
	}

	async function waitForServer(url: string): Promise<void> {
		const deadline = Date.now() + READY_TIMEOUT_MS;
		while (Date.now() < deadline) {
			if (server && (server.exitCode !== null || server.signalCode !== null)) {
				throw new Error(
					`wrangler dev exited early (${server.exitCode ?? server.signalCode})\n${serverLog.slice(-4000)}`,
				);
			}
			try {
				const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
				await response.arrayBuffer();
				return;
			} catch {
				await new Promise((resolve) => setTimeout(resolve, 500));
			}
		}
		throw new Error(
			`wrangler dev did not answer ${url} within ${READY_TIMEOUT_MS} ms\n${serverLog.slice(-4000)}`,
		);
	}

	beforeAll(
		async () => {
			const buildEnv: NodeJS.ProcessEnv = { ...env, WORKERS_PIPELINE_VERSION: version };
			if (onDisk.length > 0) delete buildEnv.WORKERS_PIPELINE_EXPECTED_MIGRATION;
			else buildEnv.WORKERS_PIPELINE_EXPECTED_MIGRATION = expected;
			const build = await run(
				"bash",
				[node24, "npx", "--no-install", "opennextjs-cloudflare", "build"],
				buildEnv,
				BUILD_TIMEOUT_MS,
			);
			if (build.code !== 0)
				throw new Error(
					`opennextjs-cloudflare build exited ${build.code}\n${build.output.slice(-6000)}`,
				);

			workDir = mkdtempSync(path.join(tmpdir(), "wp-e2e-work-"));
			persistDir = mkdtempSync(path.join(tmpdir(), "wp-e2e-d1-"));
			tempDirs.push(workDir, persistDir);

			const ledgerSql = [
				`CREATE TABLE "${ledger}" (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);`,
				...ledgerRows.map((name) => `INSERT INTO "${ledger}" (name) VALUES (${sqlString(name)});`),
			].join("\n");
			const seedSql = `
INSERT INTO users (id, email, display_name, created_at) VALUES (1, 'e2e@example.com', 'E2E', '2026-01-01T00:00:00Z');
INSERT INTO projects (id, owner_id, name, slug, archived, created_at) VALUES (1, 1, ${sqlString(projectName)}, 'e2e-project', 0, '2026-01-01T00:00:00Z');
INSERT INTO content (id, project_id, title, body, status, created_at, updated_at) VALUES
	(1, 1, ${sqlString(title)}, 'Body', 'published', '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z'),
	(2, 1, ${sqlString(draftTitle)}, 'Body', 'draft', '2026-01-03T00:00:00Z', '2026-01-03T00:00:00Z');
INSERT INTO content_metrics (content_id, views, likes) VALUES (1, 4242, 7), (2, 1, 0);
`;
			await executeSql(`${SCHEMA_SQL}\n${ledgerSql}\n${seedSql}`);

			const port = await freePort();
			baseUrl = `http://127.0.0.1:${port}`;
			server = spawn(
				"bash",
				[
					node24,
					"npx",
					"--no-install",
					"wrangler",
					"dev",
					"--port",
					String(port),
					"--ip",
					"127.0.0.1",
					"--inspector-port",
					String(await freePort()),
					"--persist-to",
					persistDir,
					"--show-interactive-dev-session=false",
				],
				{ cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
			);
			server.stdout?.on("data", (chunk: Buffer) => {
				serverLog += chunk.toString();
			});
			server.stderr?.on("data", (chunk: Buffer) => {
				serverLog += chunk.toString();
			});
			await waitForServer(`${baseUrl}/api/health`);
		},
		BUILD_TIMEOUT_MS + READY_TIMEOUT_MS + 300_000,
	);

	afterAll(async () => {
		if (server) {
			const exited = new Promise<void>((resolve) => {
				if (!server || server.exitCode !== null || server.signalCode !== null) resolve();
				else server.once("exit", () => resolve());
			});
			killGroup(server, "SIGTERM");
			const timer = setTimeout(() => {
				if (server) killGroup(server, "SIGKILL");
			}, 10_000);
			await exited;
			clearTimeout(timer);
		}
		for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
	}, 60_000);

	it("produces .open-next/worker.js", () => {
		const worker = path.join(root, ".open-next", "worker.js");
		expect(existsSync(worker)).toBe(true);
		expect(statSync(worker).size).toBeGreaterThan(0);
	});

	it("reports healthy with the injected version and expected migration", async () => {
		const response = await fetch(`${baseUrl}/api/health`);
		const body = (await response.json()) as Record<string, unknown>;
		expect(response.status, JSON.stringify(body)).toBe(200);
		expect(response.headers.get("cache-control")).toContain("no-store");
		expect(body).toEqual({
			status: "ok",
			version,
			schema: { head: expected, expected },
			db: "ok",
		});
	});

	it("renders published content with its project and views, not drafts", async () => {
		const response = await fetch(`${baseUrl}/`);
		const html = await response.text();
		expect(response.status).toBe(200);
		expect(html).toContain(title);
		expect(html).toContain(projectName);
		expect(html).toContain("4242");
		expect(html).not.toContain(draftTitle);
	});

	it("reports 503 with a reason once the newest ledger row is gone", async () => {
		await executeSql(`DELETE FROM "${ledger}" WHERE id = (SELECT MAX(id) FROM "${ledger}");`);
		const response = await fetch(`${baseUrl}/api/health`);
		const body = (await response.json()) as Record<string, unknown>;
		expect(response.status, JSON.stringify(body)).toBe(503);
		expect(response.headers.get("cache-control")).toContain("no-store");
		const previous = ledgerRows[ledgerRows.length - 2];
		expect(body).toMatchObject({
			status: "error",
			version,
			db: "ok",
			schema: { head: previous ?? null, expected },
			reason: previous
				? `schema behind: head ${previous}, expected ${expected}`
				: "no migrations applied",
		});
	});
});
