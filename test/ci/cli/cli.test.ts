import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { GLOBAL_FLAGS } from "../../../ci/cli/args.ts";
import { COMMANDS } from "../../../ci/cli/commands.ts";
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE } from "../../../ci/cli/main.ts";
import { captureCli, REPO, STACK_LINE, spawnCli, startCli } from "../../support/cli.ts";
import { isAlive, trackProcesses } from "../../support/processes.ts";
import { type Files, makeProject, makeTempDir, removeProjects } from "../../support/project.ts";

const processes = trackProcesses();
afterEach(() => {
	processes.stopAll();
	removeProjects();
});
afterAll(() => processes.stopAll());

/**
 * A copy of the basic fixture project (wrangler.jsonc, workers-pipeline.jsonc without a real
 * toolchain, two migrations and their snapshot); `files` adds, replaces (string/bytes) or deletes (null).
 */
const fixture = (files: Files = {}): string =>
	makeProject({ from: "basic", files, prefix: "wp-cli-" });

/** Runs the CLI in-process with captured output; `--cwd <dir>` is added when a dir is given. */
const cli = (argv: string[], dir?: string, env: Record<string, string> = {}) =>
	// No CI / GITHUB_STEP_SUMMARY: no report files are written into the fixture.
	captureCli(dir ? [...argv, "--cwd", dir] : argv, { cwd: dir ?? REPO, env });

interface JsonReport {
	ok: boolean;
	command: string;
	findings: {
		step: string;
		code: string;
		severity: string;
		file: string | null;
		line: number | null;
		message: string;
	}[];
	migrations: { name: string; checksum: string | null; status: string }[];
	steps: { name: string; ok: boolean; data: Record<string, unknown> }[];
	timings: { totalMs: number; steps: Record<string, number> };
}

const SETTINGS_TEST_FAILS = `{
	"lint": { "biome": false, "typecheck": false },
	"test": { "command": ["node", "-e", "console.log('1 assertion failed'); process.exit(3)"] },
}`;

describe("runCli()", () => {
	it("should pass the clean fixture (exit 0)", async () => {
		const result = await cli(["migration-test"], fixture());
		expect(result.code).toBe(EXIT_OK);
		expect(result.stdout).toContain("2 migration(s) replayed");
		expect(result.stdout).toContain("snapshot matches");
		expect(result.stderr).toBe("");
	});

	// Bad input never crashes: a clear message, the right exit code, no stack trace.
	it.each<{ label: string; files: Files; argv: string[]; code: number; stderr: RegExp[] }>([
		{
			label: "a missing migrations dir",
			files: { migrations: null },
			argv: ["migration-test"],
			code: EXIT_USAGE,
			stderr: [/Migrations directory migrations not found in .* \(D1 binding "DB"\)/],
		},
		{
			label: "a missing migrations dir, in `lint`",
			files: { migrations: null },
			argv: ["lint"],
			code: EXIT_USAGE,
			stderr: [/Migrations directory migrations not found in .* \(D1 binding "DB"\)/],
		},
		{
			label: "a missing migrations dir, in `ci`",
			files: { migrations: null },
			argv: ["ci", "--no-parity", "--no-build"],
			code: EXIT_USAGE,
			stderr: [/Migrations directory migrations not found/],
		},
		{
			label: "an invalid wrangler.jsonc",
			files: { "wrangler.jsonc": `{\n\t"name": "x",\n\t"d1_databases": [}\n}` },
			argv: ["migration-test"],
			code: EXIT_USAGE,
			stderr: [/wrangler\.jsonc:3:19: invalid JSONC/],
		},
		{
			label: "an invalid workers-pipeline.jsonc",
			files: { "workers-pipeline.jsonc": `{"lint": {"biome": "yes"}}` },
			argv: ["lint"],
			code: EXIT_USAGE,
			stderr: [
				/workers-pipeline\.jsonc: invalid configuration/,
				/\$\.lint\.biome \(line 1, column 20\): expected boolean, found string "yes"/,
			],
		},
		{
			label: "an unknown env",
			files: {},
			argv: ["migration-test", "--env", "prod"],
			code: EXIT_USAGE,
			stderr: [/Unknown environment "prod"/, /Known environments: staging, production\./],
		},
		{
			label: "an unknown flag",
			files: {},
			argv: ["migration-test", "--update-snapshots"],
			code: EXIT_USAGE,
			stderr: [
				/Unknown option --update-snapshots for `migration-test`\. Did you mean --update-snapshot\?/,
			],
		},
		{
			label: "a flag missing its value",
			files: {},
			argv: ["migration-test", "--env"],
			code: EXIT_USAGE,
			stderr: [/Option --env needs a value: --env <env>\./],
		},
		{
			label: "a flag followed by another flag instead of its value",
			files: {},
			argv: ["migration-test", "--binding", "--update-snapshot"],
			code: EXIT_USAGE,
			stderr: [/Option --binding needs a value/],
		},
		{
			label: "a positional argument",
			files: {},
			argv: ["migration-test", "migrations"],
			code: EXIT_USAGE,
			stderr: [/Unexpected argument "migrations"/],
		},
		{
			label: "a value given to a switch",
			files: {},
			argv: ["migration-test", "--parity=yes"],
			code: EXIT_USAGE,
			stderr: [/--parity is a switch/],
		},
		{
			label: "an unknown binding",
			files: {},
			argv: ["migration-test", "--binding", "OTHER"],
			code: EXIT_USAGE,
			stderr: [/has no binding "OTHER" \(has: DB\)/],
		},
	])("should exit $code with a clear message for $label", async ({ files, argv, code, stderr }) => {
		const result = await cli(argv, fixture(files));
		expect(result.code).toBe(code);
		for (const pattern of stderr) expect(result.stderr).toMatch(pattern);
		expect(result.stderr).not.toMatch(STACK_LINE);
		expect(result.stderr).not.toContain("internal error");
		expect(result.stdout).toBe("");
	});

	it("should suggest the closest command for an unknown one (exit 2)", async () => {
		const result = await cli(["migraton-test"]);
		expect(result.code).toBe(EXIT_USAGE);
		expect(result.stderr).toContain(
			'unknown command "migraton-test". Did you mean `migration-test`?',
		);
	});

	it("should print the overview and exit 2 without a command, 0 with --help", async () => {
		const bare = await cli([]);
		const help = await cli(["--help"]);
		expect(bare.code).toBe(EXIT_USAGE);
		expect(help.code).toBe(EXIT_OK);
		expect(help.stdout).toBe(bare.stdout);
		for (const command of COMMANDS) expect(help.stdout).toContain(`  ${command.name} `);
	});

	it.each(COMMANDS.map((c) => [c.name, c] as const))(
		"should list every flag of `%s --help`",
		async (_, command) => {
			const result = await cli([command.name, "--help"]);
			expect(result.code).toBe(EXIT_OK);
			const required = command.flags
				.filter((f) => f.required)
				.map((f) => ` --${f.name} ${f.value}`);
			expect(result.stdout).toContain(
				`Usage: workers-pipeline ${command.name}${required.join("")} [options]`,
			);
			for (const flag of [...command.flags, ...GLOBAL_FLAGS]) {
				expect(result.stdout).toContain(`--${flag.name}${flag.value ? ` ${flag.value}` : ""}`);
			}
		},
	);

	it("should show migration-test's own flags in its help", async () => {
		const { stdout } = await cli(["migration-test", "--help"]);
		for (const flag of [
			"--dir <dir>",
			"--env <env>",
			"--binding <binding>",
			"--update-snapshot",
			"--parity",
		]) {
			expect(stdout).toContain(flag);
		}
	});

	it("should pass an empty migrations dir with a CATALOG_EMPTY warning (exit 0)", async () => {
		const dir = fixture({ "migrations.schema.sql": null, migrations: null });
		mkdirSync(path.join(dir, "migrations"));
		const result = await cli(["migration-test", "--json"], dir);
		expect(result.code).toBe(EXIT_OK);
		const report = JSON.parse(result.stdout) as JsonReport;
		expect(report.ok).toBe(true);
		expect(report.findings.map((f) => [f.code, f.severity, f.file])).toEqual([
			["CATALOG_EMPTY", "warning", "migrations"],
		]);
		expect(report.migrations).toEqual([]);
	});

	it("should fail (exit 1) on a migration that is not valid UTF-8, with file and line", async () => {
		const bytes = Buffer.concat([
			Buffer.from("CREATE TABLE t (x);\nINSERT INTO t VALUES ('"),
			Buffer.from([0xff]),
			Buffer.from("');\n"),
		]);
		const result = await cli(["migration-test"], fixture({ "migrations/0003_latin1.sql": bytes }));
		expect(result.code).toBe(EXIT_FAILED);
		expect(result.stdout).toContain("CATALOG_INVALID_UTF8 migrations/0003_latin1.sql:2:");
		expect(result.stdout).toContain("REPLAY_FAILED migrations/0003_latin1.sql:1:");
		expect(result.stderr).not.toMatch(STACK_LINE);
	});

	const isRoot = process.getuid?.() === 0;
	it.skipIf(isRoot)("should fail (exit 1) on an unreadable migration file", async () => {
		const dir = fixture({ "migrations/0003_secret.sql": "CREATE TABLE s (x);\n" });
		chmodSync(path.join(dir, "migrations/0003_secret.sql"), 0o000);
		const result = await cli(["migration-test"], dir);
		expect(result.code).toBe(EXIT_FAILED);
		expect(result.stdout).toContain("CATALOG_UNREADABLE migrations/0003_secret.sql");
	});
	if (isRoot)
		console.info("cli unreadable-file test skipped: running as root, which reads chmod 000 files");

	it("should print exactly one JSON document with findings, migrations and timings on failure", async () => {
		const dir = fixture({
			"migrations/0003_broken.sql":
				"CREATE TABLE tags (name TEXT);\nINSERT INTO tag (name) VALUES ('x');\n",
			"migrations/0000_first.sql.retired": "SELECT 1;\n",
		});
		const result = await cli(["migration-test", "--json"], dir);
		expect(result.code).toBe(EXIT_FAILED);
		const report = JSON.parse(result.stdout) as JsonReport;
		expect(report.ok).toBe(false);
		expect(report.command).toBe("migration-test");
		expect(report.findings).toEqual([
			{
				step: "migration-test",
				code: "REPLAY_FAILED",
				severity: "error",
				file: "migrations/0003_broken.sql",
				line: 2,
				column: null,
				message: expect.stringContaining("no such table: tag"),
			},
		]);
		expect(report.migrations.map((m) => [m.name, m.status])).toEqual([
			["0001_create_users.sql", "applied"],
			["0002_create_notes.sql", "applied"],
			["0003_broken.sql", "failed"],
			["0000_first.sql.retired", "retired"],
		]);
		for (const m of report.migrations.slice(0, 3)) expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);
		expect(report.migrations[3]).toHaveProperty("checksum", null);
		expect(report.timings.totalMs).toBeGreaterThanOrEqual(0);
		expect(Object.keys(report.timings.steps)).toEqual(["migration-test"]);
	});

	it("should print one JSON document with the same keys for a usage error (exit 2)", async () => {
		const result = await cli(["migration-test", "--json", "--env", "prod"], fixture());
		expect(result.code).toBe(EXIT_USAGE);
		const report = JSON.parse(result.stdout) as JsonReport & { error: { code: string } };
		expect(report.ok).toBe(false);
		expect(report.error.code).toBe("E_CONFIG_INVALID");
		expect(report.findings).toEqual([
			expect.objectContaining({
				code: "E_CONFIG_INVALID",
				severity: "error",
				message: expect.stringContaining('Unknown environment "prod"'),
			}),
		]);
		expect(report.migrations).toEqual([]);
		expect(report.timings.totalMs).toBeGreaterThanOrEqual(0);
		expect(result.stderr).toContain('Unknown environment "prod"');
	});

	it("should test each of an environment's D1 bindings with --env alone, as migrate --env meets them", async () => {
		const dir = makeProject({
			prefix: "wp-cli-env-sets-",
			files: {
				"wrangler.jsonc": JSON.stringify({
					name: "app",
					env: {
						staging: {
							d1_databases: [
								{ binding: "DB", database_id: "a" },
								{ binding: "EVENTS", database_id: "b", migrations_dir: "events" },
							],
						},
					},
				}),
				"migrations/0001_a.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
				"events/0001_e.sql": "CREATE TABLE e (id INTEGER PRIMARY KEY);\n",
			},
		});
		const write = await cli(["migration-test", "--env", "staging", "--update-snapshot"], dir);
		expect(write.code, write.stdout + write.stderr).toBe(0);
		const run = await cli(["migration-test", "--env", "staging", "--json"], dir);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		const report = JSON.parse(run.stdout) as JsonReport;
		expect(report.steps.map((s) => s.name)).toEqual(["migration-test DB", "migration-test EVENTS"]);
		// --binding still picks one.
		const one = await cli(
			["migration-test", "--env", "staging", "--binding", "EVENTS", "--json"],
			dir,
		);
		expect((JSON.parse(one.stdout) as JsonReport).steps.map((s) => s.name)).toEqual([
			"migration-test",
		]);
	});

	it("should point the --json finding of a config error at its file, line and column", async () => {
		const dir = fixture({
			"workers-pipeline.jsonc": '{\n  // ours\n  "lint": { "typcheck": false }\n}\n',
		});
		const result = await cli(["lint", "--json"], dir);
		expect(result.code).toBe(EXIT_USAGE);
		const report = JSON.parse(result.stdout) as JsonReport;
		expect(report.findings).toEqual([
			expect.objectContaining({
				code: "E_CONFIG_INVALID",
				file: "workers-pipeline.jsonc",
				line: 3,
				column: 13,
			}),
		]);
	});

	it("should fail on snapshot drift with the diff, and pass after --update-snapshot", async () => {
		const dir = fixture();
		const notes = path.join(dir, "migrations/0002_create_notes.sql");
		writeFileSync(
			notes,
			readFileSync(notes, "utf8").replace("body TEXT NOT NULL DEFAULT ''", "body TEXT"),
		);

		const drift = await cli(["migration-test"], dir);
		expect(drift.code).toBe(EXIT_FAILED);
		expect(drift.stdout).toContain("SNAPSHOT_DRIFT migrations.schema.sql");
		expect(drift.stdout).toContain("table notes changed:");
		expect(drift.stdout).toContain("- \tbody TEXT NOT NULL DEFAULT ''");
		expect(drift.stdout).toContain("+ \tbody TEXT\n");
		expect(drift.stdout).toContain("--update-snapshot");

		const update = await cli(["migration-test", "--update-snapshot"], dir);
		expect(update.code).toBe(EXIT_OK);
		expect(update.stdout).toContain("snapshot updated");
		expect(readFileSync(path.join(dir, "migrations.schema.sql"), "utf8")).toContain(
			"\tbody TEXT\n",
		);

		const after = await cli(["migration-test"], dir);
		expect(after.code).toBe(EXIT_OK);
		expect(after.stdout).toContain("snapshot matches");
	});

	it("should fail (exit 1) when no snapshot is committed for a non-empty schema", async () => {
		const result = await cli(["migration-test"], fixture({ "migrations.schema.sql": null }));
		expect(result.code).toBe(EXIT_FAILED);
		expect(result.stdout).toContain("SNAPSHOT_MISSING migrations.schema.sql");
	});

	it("should fail `lint` on a D1 rule violation, printing file:line:col", async () => {
		const dir = fixture({
			"migrations/0003_tune.sql": "CREATE TABLE cache (k TEXT);\nPRAGMA journal_mode = WAL;\n",
		});
		const result = await cli(["lint"], dir);
		expect(result.code).toBe(EXIT_FAILED);
		expect(result.stdout).toMatch(/^error\s+D1_PRAGMA migrations\/0003_tune\.sql:2:8: /m);
		expect(result.stdout).toContain("✘ lint failed");
	});

	it.each([
		{ case: "rewrites tracked tsconfig.json", rewrite: true },
		{ case: "leaves the tree as it was", rewrite: false },
	])("should say when type generation $case (a dirty tree blocks deploy)", async ({ rewrite }) => {
		const typegen = rewrite
			? "require('fs').appendFileSync('tsconfig.json', '\\n')"
			: "require('fs').writeFileSync('untracked.d.ts', '')";
		const dir = fixture({
			"package.json": JSON.stringify({
				name: "app",
				private: true,
				scripts: { "cf-typegen": `node -e "${typegen}"` },
			}),
			"tsconfig.json": "{}\n",
			".gitignore": "untracked.d.ts\n",
			// The typecheck must see what the type generation wrote: it fails on the committed file.
			"workers-pipeline.jsonc": JSON.stringify({
				lint: {
					biome: false,
					typecheckCommand: rewrite
						? [
								"node",
								"-e",
								"process.exit(require('fs').readFileSync('tsconfig.json', 'utf8') === '{}\\n\\n' ? 0 : 1)",
							]
						: ["node", "-e", "0"],
				},
			}),
		});
		const git = (...args: string[]) =>
			spawnSync("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", ...args], {
				cwd: dir,
			});
		git("init", "-q");
		git("add", "-A");
		git("commit", "-qm", "init");
		const result = await cli(["lint", "--json"], dir);
		expect(result.code, result.stdout + result.stderr).toBe(EXIT_OK);
		const report = JSON.parse(result.stdout) as JsonReport;
		const warning = report.findings.find((f) => f.code === "TYPEGEN_CHANGED_TREE");
		if (rewrite) {
			expect(warning?.severity).toBe("warning");
			expect(warning?.message).toMatch(
				/cf-typegen wrote tsconfig\.json \(tracked\) differently from the commit: the typecheck used what it wrote, then the committed file was put back/,
			);
		} else expect(warning).toBeUndefined();
		// Lint leaves the tree as it found it: a build after it is stamped clean.
		expect(readFileSync(path.join(dir, "tsconfig.json"), "utf8")).toBe("{}\n");
		expect(git("status", "--porcelain").stdout.toString()).toBe("");
	});

	it("should pass `lint` when the violation is suppressed with a reason", async () => {
		const dir = fixture({
			"migrations/0003_tune.sql":
				"CREATE TABLE cache (k TEXT);\n-- workers-pipeline-disable D1_PRAGMA: measured on a local copy, harmless on D1\nPRAGMA journal_mode = WAL;\n",
		});
		const result = await cli(["lint"], dir);
		expect(result.code).toBe(EXIT_OK);
		expect(result.stdout).not.toContain("D1_PRAGMA");
		expect(result.stdout).toContain("✔ lint passed");
	});

	it("should honour acknowledgements from workers-pipeline.jsonc", async () => {
		const dir = fixture({
			"migrations/3_legacy.sql": "CREATE TABLE legacy (x);\n",
			"workers-pipeline.jsonc": `{
				"lint": { "biome": false, "typecheck": false },
				"migrations": { "acknowledge": [
					{ "code": "CATALOG_BAD_NAME", "files": ["3_legacy.sql"], "reason": "applied to production in 2024" },
				] },
			}`,
		});
		const result = await cli(["lint", "--json"], dir);
		expect(result.code).toBe(EXIT_OK);
		const report = JSON.parse(result.stdout) as JsonReport;
		expect(report.findings).toEqual([
			expect.objectContaining({
				code: "CATALOG_BAD_NAME",
				file: "migrations/3_legacy.sql",
				acknowledged: "applied to production in 2024",
			}),
		]);
		// Biome and tsc are switched off: D1 lint alone ran, over the fixture's two files and this one.
		expect(report.steps.find((s) => s.name === "lint")?.data).toEqual({
			migrations: 3,
			sets: 1,
			tools: [],
		});
	});

	it("should run lint, test, build and migration-test for `ci --no-parity` with one summary (exit 0)", async () => {
		const result = await cli(["ci", "--no-parity"], fixture());
		expect(result.code).toBe(EXIT_OK);
		expect(result.stdout).toMatch(/^lint\s+✔ ok /m);
		expect(result.stdout).toMatch(/^build\s+✔ ok .*wrangler bundle.*gzip/m);
		expect(result.stdout).toMatch(/^test\s+✔ ok .*node -e process\.exit\(0\): ok/m);
		expect(result.stdout).toMatch(/^migration-test\s+✔ ok .*snapshot matches/m);
		expect(result.stdout.match(/^[✔✘] ci /gm)).toEqual(["✔ ci "]);
		expect(result.stdout).not.toContain("parity");
	});

	it("should exit 1 for `ci` when the test command fails, still running the other steps", async () => {
		const dir = fixture({
			"workers-pipeline.jsonc": SETTINGS_TEST_FAILS,
			"migrations/0003_bad.sql": "PRAGMA journal_mode = WAL;\n",
		});
		const result = await cli(["ci", "--no-parity", "--no-build", "--json"], dir);
		expect(result.code).toBe(EXIT_FAILED);
		const report = JSON.parse(result.stdout) as JsonReport;
		expect(report.steps.map((s) => [s.name, s.ok])).toEqual([
			["lint", false],
			["format", true],
			["architecture", true],
			["test", false],
			["migration-test", false],
		]);
		// D1 refuses the PRAGMA, so the replay (which refuses what D1 refuses) fails on it too.
		expect(report.findings.map((f) => [f.step, f.code])).toEqual([
			["lint", "D1_PRAGMA"],
			["test", "TESTS_FAILED"],
			["migration-test", "REPLAY_FAILED"],
		]);
		expect(report.findings[1]?.message).toContain("exited with 3");
		expect(report.findings[1]?.message).toContain("1 assertion failed");
		expect(Object.keys(report.timings.steps)).toEqual([
			"lint",
			"format",
			"architecture",
			"test",
			"migration-test",
		]);
	});
});

describe("bin/workers-pipeline.js", () => {
	// The test runner's environment minus CI and GITHUB_STEP_SUMMARY (no report files written).
	const { CI: _ci, GITHUB_STEP_SUMMARY: _summary, ...env } = process.env;
	const run = (args: string[]) => spawnCli(processes, args, { env, timeoutMs: 30_000 });

	it("should print a parseable JSON report on stdout for migration-test --json", async () => {
		const dir = fixture();
		const child = await run(["migration-test", "--cwd", dir, "--json"]);
		expect(child.code).toBe(EXIT_OK);
		const report = JSON.parse(child.stdout) as JsonReport;
		expect(report.ok).toBe(true);
		expect(report.migrations.map((m) => [m.name, m.status])).toEqual([
			["0001_create_users.sql", "applied"],
			["0002_create_notes.sql", "applied"],
		]);
	});

	it("should exit 2 for an unknown env with a message and no stack trace", async () => {
		const child = await run(["migration-test", "--cwd", fixture(), "--env", "nope"]);
		expect(child.code).toBe(EXIT_USAGE);
		expect(child.stderr).toContain('Unknown environment "nope"');
		expect(child.stderr).not.toMatch(STACK_LINE);
		expect(child.stdout).toBe("");
	});

	it("should exit 130 on Ctrl-C, stopping the tool it runs", async () => {
		const markerDir = makeTempDir("wp-sigint-");
		const pidFile = path.join(markerDir, "pid");
		// The test command records its PID, then idles until it is killed.
		const dir = fixture({
			"workers-pipeline.jsonc": `{
	"lint": { "biome": false, "typecheck": false },
	"test": { "command": ["node", "-e", "require('fs').writeFileSync('${pidFile}', String(process.pid)); setInterval(() => {}, 1000)"] },
}`,
		});
		const started = await startCli(processes, ["test", "--cwd", dir], { env, timeoutMs: 60_000 });
		await expect.poll(() => existsSync(pidFile), { timeout: 30_000 }).toBe(true);
		const tool = Number(readFileSync(pidFile, "utf8"));
		process.kill(started.pid, "SIGINT");
		const result = await started.done;
		expect(result.exitCode, result.stdout + result.stderr).toBe(EXIT_INTERRUPTED);
		expect(result.stderr).not.toMatch(STACK_LINE);
		await expect.poll(() => isAlive(tool)).toBe(false);
	});

	it("should reuse a passing test run in `ci` until a project file changes, and never cache a failure", async () => {
		const counterDir = makeTempDir("wp-counter-");
		const counter = path.join(counterDir, "runs");
		const settings = (exitCode: number) => `{
	"lint": { "biome": false, "typecheck": false },
	"test": { "command": ["node", "-e", "require('fs').appendFileSync('${counter}', 'x'); process.exit(${exitCode})"] },
}`;
		const dir = fixture({ "workers-pipeline.jsonc": settings(0) });
		const runs = () => (existsSync(counter) ? readFileSync(counter, "utf8").length : 0);
		expect((await cli(["ci", "--no-parity", "--no-build"], dir)).code).toBe(EXIT_OK);
		expect(runs()).toBe(1);
		const second = await cli(["ci", "--no-parity", "--no-build"], dir);
		expect(second.code).toBe(EXIT_OK);
		expect(second.stdout).toMatch(/^test\s+✔ ok .*cached: no file changed/m);
		expect(runs()).toBe(1);
		expect((await cli(["ci", "--no-parity", "--no-build", "--no-cache"], dir)).code).toBe(EXIT_OK);
		expect(runs()).toBe(2);
		writeFileSync(path.join(dir, "src", "index.ts"), "export default {};\n");
		expect((await cli(["ci", "--no-parity", "--no-build"], dir)).code).toBe(EXIT_OK);
		expect(runs()).toBe(3);
		writeFileSync(path.join(dir, "workers-pipeline.jsonc"), settings(1));
		expect((await cli(["ci", "--no-parity", "--no-build"], dir)).code).toBe(EXIT_FAILED);
		expect((await cli(["ci", "--no-parity", "--no-build"], dir)).code).toBe(EXIT_FAILED);
		expect(runs()).toBe(5);
	});

	// The machine's own Node here is 20: the bin must link on it and hand over to Node 24.
	it.skipIf(!olderNode())("should start on a Node older than 22 and hand over to Node 24", () => {
		const node = olderNode() as string;
		const result = spawnSync(node, [path.join(REPO, "bin/workers-pipeline.js"), "--version"], {
			encoding: "utf8",
		});
		expect(result.stderr).not.toMatch(/SyntaxError/);
		expect(result.status, result.stderr).toBe(EXIT_OK);
		expect(result.stdout).toMatch(/^\d+\.\d+\.\d+/);
	});

	it("should run the project's tools on the CLI's own Node even when PATH finds an older one first", async () => {
		const dir = fixture({
			"workers-pipeline.jsonc": `{
	"lint": { "biome": false, "typecheck": false },
	"test": { "command": ["node", "-e", "process.exit(process.version === '${process.version}' ? 0 : 3)"] },
}`,
		});
		// PATH without this Node's directory: a bare \`node\` would be the machine's own.
		const result = await cli(["test"], dir, { PATH: "/usr/local/bin:/usr/bin:/bin" });
		expect(result.stdout).toMatch(/^test\s+✔ ok /m);
		expect(result.code).toBe(EXIT_OK);
	});

	it("should let every step finish before `ci` exits on a configuration error in one of them", async () => {
		const markerDir = makeTempDir("wp-marker-");
		const marker = path.join(markerDir, "test-finished");
		const dir = fixture({
			migrations: null,
			"workers-pipeline.jsonc": `{
	"lint": { "biome": false, "typecheck": false },
	"test": { "command": ["node", "-e", "setTimeout(() => require('fs').writeFileSync('${marker}', 'x'), 1500)"] },
}`,
		});
		const result = await cli(["ci", "--no-parity", "--no-build"], dir);
		expect(result.code).toBe(EXIT_USAGE);
		// The test step's process had finished: nothing of this run is left running.
		expect(existsSync(marker)).toBe(true);
	});

	it("should refuse an unreadable or invalid --secrets-file with exit 2 before any request", async () => {
		const dir = fixture({ "secrets.json": '{ "API_KEY": ' });
		const env = {
			CLOUDFLARE_API_TOKEN: "tok-unused-0000",
			CLOUDFLARE_ACCOUNT_ID: "acc",
			CLOUDFLARE_API_BASE_URL: "http://127.0.0.1:9/client/v4",
		};
		const invalid = await cli(
			["deploy", "--env", "staging", "--secrets-file", "secrets.json"],
			dir,
			env,
		);
		expect(invalid.code).toBe(EXIT_USAGE);
		expect(invalid.stderr).toMatch(/--secrets-file secrets\.json is not valid JSON/);
		expect(invalid.stderr).not.toMatch(STACK_LINE);
		const missing = await cli(
			["deploy", "--env", "staging", "--secrets-file", "nope.env"],
			dir,
			env,
		);
		expect(missing.code).toBe(EXIT_USAGE);
		expect(missing.stderr).toMatch(/cannot read --secrets-file nope\.env: ENOENT/);
	});
});

/** A Node older than 22 on this machine (/usr/bin/node), if any. */
function olderNode(): string | undefined {
	const candidate = "/usr/bin/node";
	if (!existsSync(candidate)) return undefined;
	const version = spawnSync(candidate, ["-p", "process.versions.node"], {
		encoding: "utf8",
	}).stdout;
	return Number(version.split(".")[0]) < 22 ? candidate : undefined;
}
