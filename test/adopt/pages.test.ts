// A Cloudflare Pages project (pages_build_output_dir in wrangler.toml, Pages Functions, a D1
// binding): its D1 and its build are checked; what would run `wrangler deploy`/`wrangler dev`
// stops with a reason, as wrangler itself refuses those commands in a Pages project.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveWranglerBin } from "../../ci/cloudflare/wrangler.ts";
import { OTHER_BUILD_STAMP } from "../../ci/steps/build.ts";
import { captureCli } from "../support/cli.ts";

// The shape `wrangler pages project create` + `wrangler pages download config` give: a
// pages_build_output_dir, environments preview/production without names, D1 in both.
const WRANGLER_TOML = `name = "pages-app"
compatibility_date = "2026-06-01"
# Pages serves what the build writes here (relative to this file, as wrangler resolves it).
pages_build_output_dir = "./dist"

[[d1_databases]]
binding = "DB"
database_name = "pages-app"
database_id = "00000000-0000-4000-8000-000000000001"

[env.production]
[[env.production.d1_databases]]
binding = "DB"
database_name = "pages-app"
database_id = "00000000-0000-4000-8000-000000000001"
`;

const FILES: Record<string, string> = {
	"wrangler.toml": WRANGLER_TOML,
	"package.json": JSON.stringify({
		name: "pages-app",
		private: true,
		scripts: { build: "node build.mjs" },
	}),
	"build.mjs":
		"import { mkdirSync, writeFileSync } from 'node:fs';\nmkdirSync('dist', { recursive: true });\nwriteFileSync('dist/index.html', '<p>hi</p>\\n');\n",
	"functions/api/notes.ts":
		"export const onRequestGet: PagesFunction<{ DB: D1Database }> = async ({ env }) =>\n\tResponse.json((await env.DB.prepare('SELECT id, body FROM notes').all()).results);\n",
	"migrations/0001_notes.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
	"migrations/0002_note_author.sql": "ALTER TABLE notes ADD COLUMN author TEXT;\n",
	"playwright.config.ts": "export default {};\n",
	".gitignore": "dist\nnode_modules\n.wrangler\n",
};

let dir = "";
// An API nobody answers: a request sent would fail as a network error (exit 1), not exit 2.
const REMOTE = {
	CLOUDFLARE_API_TOKEN: "t",
	CLOUDFLARE_ACCOUNT_ID: "a",
	CLOUDFLARE_API_BASE_URL: "http://127.0.0.1:9/client/v4",
};

beforeAll(() => {
	dir = mkdtempSync(path.join(tmpdir(), "wp-pages-"));
	for (const [name, text] of Object.entries(FILES)) {
		mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
		writeFileSync(path.join(dir, name), text);
	}
	const env = {
		...process.env,
		GIT_AUTHOR_NAME: "t",
		GIT_AUTHOR_EMAIL: "t@t",
		GIT_COMMITTER_NAME: "t",
		GIT_COMMITTER_EMAIL: "t@t",
	};
	for (const args of [
		["init", "-q"],
		["add", "-A"],
		["commit", "-qm", "init"],
	])
		execFileSync("git", args, { cwd: dir, stdio: "pipe", env });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (argv: string[], env: Record<string, string> = {}) =>
	captureCli([...argv, "--json", "--cwd", dir], { cwd: dir, env });

describe("a Pages project", () => {
	it("is refused by real wrangler's deploy, the upload measure build would otherwise run", () => {
		let output = "";
		try {
			execFileSync(
				process.execPath,
				[resolveWranglerBin(dir), "deploy", "--dry-run", "--config", "wrangler.toml"],
				{ cwd: dir, stdio: "pipe", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
			);
		} catch (error) {
			output = String((error as { stderr?: Buffer }).stderr);
		}
		expect(output).toContain("Workers-specific command in a Pages project");
	}, 60_000);

	it("builds with its build script into pages_build_output_dir, measuring and stamping no Worker", async () => {
		const run = await cli(["build"]);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		const step = JSON.parse(run.stdout).steps[0] as { summary: string; skipped?: boolean };
		expect(step.summary).toContain("into dist");
		expect(step.summary).toContain("a Pages project: no Worker upload to measure");
		expect(existsSync(path.join(dir, "dist/index.html"))).toBe(true);
		expect(existsSync(path.join(dir, OTHER_BUILD_STAMP))).toBe(false);
	}, 60_000);

	it("init advises a Pages Function health route and deploying with wrangler pages", async () => {
		const run = await cli(["init"]);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		const next = (JSON.parse(run.stdout).steps[0].data as { next: string[] }).next.join("\n");
		expect(next).toContain("as a Pages Function: functions/api/health.ts");
		expect(next).toContain("deploy it with `wrangler pages deploy` after");
		expect(readFileSync(path.join(dir, "wrangler.toml"), "utf8")).toContain("[version_metadata]");
	});

	it("checks its migrations as any D1's", async () => {
		const run = await cli(["migration-test", "--update-snapshot"]);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		expect(JSON.parse(run.stdout).ok).toBe(true);
		expect(readFileSync(path.join(dir, "migrations.schema.sql"), "utf8")).toContain("author");
	}, 60_000);

	it.each([
		[["deploy", "--env", "production"], "deploy"],
		[["rollback", "--env", "production"], "rollback"],
		[["serve"], "serve"],
	])(
		"%j stops with exit 2 and says to use wrangler pages, before anything is sent",
		async (argv, command) => {
			const run = await cli(argv, REMOTE);
			expect(run.code, run.stdout + run.stderr).toBe(2);
			const error = JSON.parse(run.stdout).error as { code: string; message: string };
			expect(error.code).toBe("E_CONFIG_INVALID");
			expect(error.message).toContain(`\`workers-pipeline ${command}\``);
			expect(error.message).toContain("is a Cloudflare Pages project (pages_build_output_dir)");
			expect(error.message).toContain("wrangler pages deploy");
			expect(error.message).not.toContain("127.0.0.1:9");
		},
	);

	it("skips e2e without --base-url (wrangler dev refuses to serve it), with what to do", async () => {
		const run = await cli(["e2e"]);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		const report = JSON.parse(run.stdout);
		expect(report.steps[0].skipped).toBe(true);
		const finding = report.findings.find((f: { code: string }) => f.code === "E2E_PAGES_PROJECT");
		expect(finding?.message).toContain("--base-url");
	});
});
