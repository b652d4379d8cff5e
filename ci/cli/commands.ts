import { existsSync } from "node:fs";
import path from "node:path";
import type { ProjectConfig } from "../config/schema.ts";
import {
	DEFAULT_DEPLOY_STRATEGY,
	DEFAULT_GRADUAL_STEPS,
	DEFAULT_HEALTH_PROBES,
	DEFAULT_HEALTH_TIMEOUT_SECONDS,
	DEFAULT_HEALTH_WINDOW_SECONDS,
	DEFAULT_LOCK_TIMEOUT_SECONDS,
	DEFAULT_REPORT_DIR,
	DEFAULT_WRANGLER_CONFIG,
	type DeployStrategy,
} from "../constants.ts";
import { UserError } from "../errors.ts";
import type { StepResult } from "../report/model.ts";
import type { StepContext } from "../steps/_step.ts";
import type { InstallScripts } from "../steps/install.ts";
import type { FlagDef, ParsedFlags } from "./args.ts";

// Step modules (and with them zod, the Cloudflare SDK, better-sqlite3) load when a command runs,
// never at start-up: `--help` stays fast. Import them inside `run`, as below; a static import of
// a step here fails test/ci/cli/startup.test.ts.

export interface CommandInput {
	flags: ParsedFlags;
	cwd: string;
	/** A StepContext for the named step (progress is attributed to it). */
	context: (step: string) => StepContext;
}

export interface CommandDef {
	name: string;
	/** Commands that change a remote database always leave JSON and Markdown reports. */
	alwaysReport?: boolean;
	summary: string;
	/** Command-specific flags; the global ones (see args.ts) come on top. */
	flags: FlagDef[];
	examples: string[];
	run: (input: CommandInput) => Promise<StepResult<object>[]>;
}

const str = (flags: ParsedFlags, name: string) => flags[name] as string | undefined;

async function loadProject({ flags, cwd }: CommandInput): Promise<ProjectConfig> {
	const { loadProjectConfig } = await import("../config/load.ts");
	return loadProjectConfig({
		cwd: path.resolve(cwd, str(flags, "cwd") ?? "."),
		config: str(flags, "config"),
	});
}

// `migration-test --dir x` works in a directory with no wrangler config: defaults apply.
async function loadProjectForDir(input: CommandInput): Promise<ProjectConfig> {
	const { flags, cwd } = input;
	const root = path.resolve(cwd, str(flags, "cwd") ?? ".");
	const { findWranglerConfig } = await import("../config/load.ts");
	if (str(flags, "config") || !str(flags, "dir") || findWranglerConfig(root)) {
		return loadProject(input);
	}
	if (!existsSync(root))
		throw new UserError(`Project directory ${root} does not exist.`, "E_CONFIG_MISSING");
	const { makeDefaultSettings } = await import("../config/plain.ts");
	return {
		root,
		wranglerPath: path.join(root, DEFAULT_WRANGLER_CONFIG),
		settingsPath: undefined,
		wrangler: { name: path.basename(root), d1_databases: [{ binding: "DB" }] },
		settings: makeDefaultSettings(),
		environments: [],
	};
}

const CACHE_FLAG: FlagDef = {
	name: "cache",
	type: "boolean",
	description:
		"reuse results of unchanged inputs (a passing test run, the build, wrangler parity verdicts, tsc); --no-cache to redo everything",
};
const cacheDir = (project: ProjectConfig) =>
	path.join(project.root, "node_modules", ".cache", "workers-pipeline");

const ENV_FLAG: FlagDef = {
	name: "env",
	type: "string",
	value: "<env>",
	description:
		"wrangler environment (env.<name> in the wrangler config; default: the top-level Worker, as in wrangler)",
};
const BINDING_FLAG: FlagDef = {
	name: "binding",
	type: "string",
	value: "<binding>",
	description: "D1 binding, when the environment has more than one",
};

export const COMMANDS: CommandDef[] = [
	{
		name: "ci",
		summary:
			"Everything a pull request needs, concurrently: lint (D1 lint and the project's own lint, format check, typecheck), tests, the build (OpenNext or the app's own), migration test with wrangler parity.",
		flags: [
			{
				name: "parity",
				type: "boolean",
				description:
					"compare the migration replay with real wrangler (default: on; --no-parity to skip)",
			},
			{
				name: "build",
				type: "boolean",
				description: "include the build and its size check (default: on; --no-build to skip)",
			},
			CACHE_FLAG,
		],
		examples: [
			"workers-pipeline ci",
			"workers-pipeline ci --json --no-parity",
			"workers-pipeline ci --no-cache",
		],
		run: async (input) => {
			const project = await loadProject(input);
			const { runCi } = await import("../steps/ci.ts");
			return runCi(input.context, {
				project,
				parity: input.flags.parity !== false,
				build: input.flags.build !== false,
				cacheDir: cacheDir(project),
				reuse: input.flags.cache !== false,
			});
		},
	},
	{
		name: "build",
		summary:
			"Builds the app (`opennextjs-cloudflare build`, build.command, or the build script of a Vite/Remix/Astro app or of an app whose wrangler main only its build writes) and checks the Worker upload size (raw, gzip) against the budget and the Workers limits.",
		flags: [
			{
				...ENV_FLAG,
				description:
					"the wrangler environment to build for (CLOUDFLARE_ENV): a Cloudflare Vite plugin build holds one environment's Worker, which deploy ships as built (default: the top-level Worker)",
			},
			CACHE_FLAG,
		],
		examples: [
			"workers-pipeline build",
			"workers-pipeline build --env production",
			"workers-pipeline build --no-cache --json",
		],
		run: async (input) => {
			const [{ runStepSafely }, { buildStep }] = await Promise.all([
				import("../steps/_run-step.ts"),
				import("../steps/build.ts"),
			]);
			return [
				await runStepSafely(buildStep, input.context("build"), {
					project: await loadProject(input),
					force: input.flags.cache === false,
					env: input.flags.env as string | undefined,
				}),
			];
		},
	},
	{
		name: "lint",
		summary:
			"D1 migration lint (naming, order, DEPENDS, D1-specific rules), then the project's own lint, format check and typecheck (its scripts, else biome/prettier/tsc), saying which ran.",
		flags: [],
		examples: ["workers-pipeline lint", "workers-pipeline lint --json"],
		run: async (input) => {
			const [{ runStepSafely }, { lintStep }] = await Promise.all([
				import("../steps/_run-step.ts"),
				import("../steps/lint.ts"),
			]);
			return [
				await runStepSafely(lintStep, input.context("lint"), { project: await loadProject(input) }),
			];
		},
	},
	{
		name: "test",
		summary:
			"Runs the project's tests: test.command, default its `test` script with its package manager (skipped when it has none).",
		flags: [],
		examples: ["workers-pipeline test"],
		run: async (input) => {
			const [{ runStepSafely }, { testStep }] = await Promise.all([
				import("../steps/_run-step.ts"),
				import("../steps/test.ts"),
			]);
			return [
				await runStepSafely(testStep, input.context("test"), { project: await loadProject(input) }),
			];
		},
	},
	{
		name: "install",
		summary:
			"Installs the project's dependencies from its lockfile with its own package manager (npm ci, pnpm/bun install --frozen-lockfile, yarn install --immutable); the Dagger module runs it before lint, test and build. Needs only package.json.",
		flags: [
			{
				name: "scripts",
				type: "string",
				value: "<all|deps|project>",
				description:
					"all (default): as the manager runs them; deps: hold back the project's own lifecycle scripts (postinstall, prepare…) for an install that sees only manifests and lockfiles; project: run only those, once the sources are in",
			},
		],
		examples: [
			"workers-pipeline install",
			"workers-pipeline install --cwd apps/web --json",
			"workers-pipeline install --scripts deps && workers-pipeline install --scripts project",
		],
		run: async (input) => {
			const [{ runStepSafely }, { installStep, INSTALL_SCRIPTS }] = await Promise.all([
				import("../steps/_run-step.ts"),
				import("../steps/install.ts"),
			]);
			const root = path.resolve(input.cwd, str(input.flags, "cwd") ?? ".");
			const scripts = str(input.flags, "scripts") ?? "all";
			if (!INSTALL_SCRIPTS.includes(scripts as InstallScripts)) {
				throw new UserError(
					`--scripts takes ${INSTALL_SCRIPTS.join(", ")}; got "${scripts}".`,
					"E_USAGE",
				);
			}
			return [
				await runStepSafely(installStep, input.context("install"), {
					root,
					scripts: scripts as InstallScripts,
				}),
			];
		},
	},
	{
		name: "init",
		summary:
			"Sets up workers-pipeline in an existing project: workers-pipeline.jsonc (naming and acknowledgements of the existing history), the health route, the version_metadata binding, a GitHub workflow calling the Dagger module, the schema snapshot. Never prompts; keeps existing files unless --force.",
		flags: [
			{
				name: "force",
				type: "boolean",
				description: "rewrite files init wrote before (settings, health route, workflow, snapshot)",
			},
			{
				name: "module",
				type: "string",
				value: "<ref>",
				description: "the Dagger module the workflow calls, e.g. github.com/acme/wp@v1",
			},
		],
		examples: [
			"workers-pipeline init",
			"workers-pipeline init --force --module github.com/acme/workers-pipeline@v0.1.0",
		],
		run: async (input) => {
			const { initStep } = await import("../steps/init.ts");
			return [
				await initStep.run(input.context("init"), {
					project: await loadProject(input),
					force: input.flags.force === true,
					module: str(input.flags, "module"),
					shownFrom: input.cwd,
				}),
			];
		},
	},
	{
		name: "migration-test",
		summary:
			"Replays every migration on a fresh D1-like database, checks the schema snapshot, optionally against real wrangler; every D1 binding's set (of one environment with --env) unless --binding or --dir picks one.",
		flags: [
			{
				name: "dir",
				type: "string",
				value: "<dir>",
				description: "migrations directory (default: the binding's migrations_dir)",
			},
			ENV_FLAG,
			BINDING_FLAG,
			{
				name: "update-snapshot",
				type: "boolean",
				description: "write the schema snapshot from this replay instead of comparing",
			},
			{
				name: "parity",
				type: "boolean",
				description:
					"also apply with `wrangler d1 migrations apply --local` and require the same outcome",
			},
			{
				name: "cache",
				type: "boolean",
				description: "reuse wrangler's parity verdict for an unchanged set of files (default: off)",
			},
			{
				name: "data",
				type: "boolean",
				description:
					"also replay with a few rows in every table between migrations (default: on; --no-data to skip)",
			},
		],
		examples: [
			"workers-pipeline migration-test",
			"workers-pipeline migration-test --parity --json",
			"workers-pipeline migration-test --update-snapshot",
		],
		// Config errors are usage errors (exit 2), so this step is not wrapped in runStepSafely.
		run: async (input) => {
			// Not steps/ci.ts: it loads every other step.
			const { migrationTestStep, planMigrationTests } = await import("../steps/migration-test.ts");
			const project = await loadProjectForDir(input);
			const args = {
				project,
				env: str(input.flags, "env"),
				binding: str(input.flags, "binding"),
				dir: str(input.flags, "dir"),
				updateSnapshot: input.flags["update-snapshot"] === true,
				parity: input.flags.parity === true,
				data: input.flags.data !== false,
				cacheDir:
					input.flags.cache === true
						? path.join(
								path.resolve(input.cwd, str(input.flags, "cwd") ?? "."),
								"node_modules",
								".cache",
								"workers-pipeline",
							)
						: undefined,
			};
			// Several migrations sets and none chosen: each, named by binding, as ci runs them
			// (with --env alone: each of that environment's bindings).
			const chosen = args.binding !== undefined || args.dir !== undefined;
			const sets = chosen ? [] : planMigrationTests(project, { env: args.env });
			if (sets.length <= 1)
				return [await migrationTestStep.run(input.context("migration-test"), args)];
			const results = [];
			for (const { name, env, binding } of sets) {
				const result = await migrationTestStep.run(input.context("migration-test"), {
					...args,
					env,
					binding,
				});
				results.push({ ...result, name });
			}
			return results;
		},
	},
];

const REQUIRED_ENV_FLAG: FlagDef = { ...ENV_FLAG, required: true };
const LOCK_TIMEOUT_FLAG: FlagDef = {
	name: "lock-timeout",
	type: "string",
	value: "<seconds>",
	description: `how long to wait for a migration lock held by another run (default ${DEFAULT_LOCK_TIMEOUT_SECONDS})`,
};

function seconds(flags: ParsedFlags, name: string): number | undefined {
	const raw = str(flags, name);
	if (raw === undefined) return undefined;
	if (!/^\d+(\.\d+)?$/.test(raw))
		throw new UserError(`--${name} expects a number of seconds, not "${raw}".`);
	return Number(raw);
}

function strategyOf(flags: ParsedFlags): DeployStrategy {
	const raw = str(flags, "strategy") ?? DEFAULT_DEPLOY_STRATEGY;
	if (raw !== "gradual" && raw !== "immediate")
		throw new UserError(`--strategy expects gradual or immediate, not "${raw}".`);
	return raw;
}

function count(flags: ParsedFlags, name: string): number | undefined {
	const raw = str(flags, name);
	if (raw === undefined) return undefined;
	if (!/^[1-9]\d*$/.test(raw))
		throw new UserError(`--${name} expects a whole number ≥ 1, not "${raw}".`);
	return Number(raw);
}

function atLeast(value: number | undefined, min: number, name: string): number | undefined {
	if (value !== undefined && value < min) {
		throw new UserError(
			`--${name} must be at least ${min} seconds (a shorter lease would be taken over mid-run).`,
		);
	}
	return value;
}

const remoteArgs = async (input: CommandInput) => ({
	project: await loadProject(input),
	env: str(input.flags, "env"),
	binding: str(input.flags, "binding"),
});

COMMANDS.push(
	{
		name: "plan",
		summary:
			"Reads the remote D1 ledger: what is applied (with checksum status), what is pending, what is wrong. Writes nothing.",
		flags: [
			ENV_FLAG,
			BINDING_FLAG,
			{
				name: "allow-out-of-order",
				type: "boolean",
				description: "report out-of-order pending migrations as warnings",
			},
		],
		examples: [
			"workers-pipeline plan --env staging",
			"workers-pipeline plan --env production --json",
		],
		run: async (input) => [
			await (await import("../steps/remote-admin.ts")).planStep.run(input.context("plan"), {
				...(await remoteArgs(input)),
				allowOutOfOrder: input.flags["allow-out-of-order"] === true,
			}),
		],
	},
	{
		name: "migrate",
		alwaysReport: true,
		summary:
			"Applies pending D1 migrations over the Cloudflare API: preflight, lock, Time Travel bookmark, one atomic request per migration with its ledger rows, validation after.",
		flags: [
			ENV_FLAG,
			BINDING_FLAG,
			{
				name: "dry-run",
				type: "boolean",
				description: "print what would be applied; write nothing",
			},
			{
				name: "auto-restore",
				type: "boolean",
				description:
					"on any failure after the first write, restore the Time Travel bookmark and confirm the old head",
			},
			{
				name: "rehearse",
				type: "boolean",
				description:
					"first replay the pending migrations on a copy of the remote data (paged reads, never export)",
			},
			{
				name: "allow-out-of-order",
				type: "boolean",
				description: "apply pending migrations numbered below the newest applied one",
			},
			{
				name: "to",
				type: "string",
				value: "<NNNN>",
				description: "apply pending migrations up to and including this number, no further",
			},
			LOCK_TIMEOUT_FLAG,
			{
				name: "lock-ttl",
				type: "string",
				value: "<seconds>",
				description: "lease of the lock; a run that dies loses it after this (default 300)",
			},
		],
		examples: [
			"workers-pipeline migrate --env staging",
			"workers-pipeline migrate --env production --rehearse --auto-restore",
			"workers-pipeline migrate --env production --dry-run --json",
			"workers-pipeline migrate --env staging --to 0007",
		],
		run: async (input) => [
			await (await import("../steps/migrate.ts")).migrateStep.run(input.context("migrate"), {
				...(await remoteArgs(input)),
				dryRun: input.flags["dry-run"] === true,
				autoRestore: input.flags["auto-restore"] === true,
				rehearse: input.flags.rehearse === true,
				allowOutOfOrder: input.flags["allow-out-of-order"] === true,
				lockTimeoutSeconds: seconds(input.flags, "lock-timeout"),
				lockTtlSeconds: atLeast(seconds(input.flags, "lock-ttl"), 2, "lock-ttl"),
				to: str(input.flags, "to"),
			}),
		],
	},
	{
		name: "baseline",
		alwaysReport: true,
		summary:
			"Adopts an existing database: records 0001..NNNN as applied, after checking the remote schema contains what they create.",
		flags: [
			ENV_FLAG,
			BINDING_FLAG,
			{
				name: "through",
				type: "string",
				value: "<NNNN>",
				description: "the newest migration already in the database",
				required: true,
			},
			LOCK_TIMEOUT_FLAG,
		],
		examples: ["workers-pipeline baseline --env production --through 0007"],
		run: async (input) => [
			await (await import("../steps/remote-admin.ts")).baselineStep.run(input.context("baseline"), {
				...(await remoteArgs(input)),
				through: str(input.flags, "through") as string,
				lockTimeoutSeconds: seconds(input.flags, "lock-timeout"),
			}),
		],
	},
	{
		name: "restore",
		alwaysReport: true,
		summary:
			"Restores the D1 database to a Time Travel bookmark (e.g. from a migrate report), then shows the ledger head.",
		flags: [
			ENV_FLAG,
			BINDING_FLAG,
			{
				name: "bookmark",
				type: "string",
				value: "<bookmark>",
				description: "the bookmark to restore",
				required: true,
			},
			LOCK_TIMEOUT_FLAG,
		],
		examples: [
			"workers-pipeline restore --env production --bookmark <bookmark from the migrate report>",
		],
		run: async (input) => [
			await (await import("../steps/remote-admin.ts")).restoreStep.run(input.context("restore"), {
				...(await remoteArgs(input)),
				bookmark: str(input.flags, "bookmark") as string,
				lockTimeoutSeconds: seconds(input.flags, "lock-timeout"),
			}),
		],
	},
);

COMMANDS.push(
	{
		name: "deploy",
		alwaysReport: true,
		summary:
			"Deploys this commit's build: records the live version, migrates D1, uploads the version, verifies it through the version-overrides header at 0 % and at each traffic step (gradual, the default) or at 100 % (immediate), and puts the recorded version back when health does not hold.",
		flags: [
			ENV_FLAG,
			BINDING_FLAG,
			{
				name: "strategy",
				type: "string",
				value: "gradual|immediate",
				description: `gradual: \`versions upload\`, 0 % verified through the override header, then --steps; immediate: \`wrangler deploy\` at 100 % (default ${DEFAULT_DEPLOY_STRATEGY})`,
			},
			{
				name: "steps",
				type: "string",
				value: "<p,p,...>",
				description: `traffic percentages of a gradual deploy, health checked at each (default ${DEFAULT_GRADUAL_STEPS.join(",")})`,
			},
			{
				name: "skip-migrate",
				type: "boolean",
				description: "do not run migrate first (e.g. it ran in an earlier job)",
			},
			{
				name: "health-timeout",
				type: "string",
				value: "<seconds>",
				description: `how long to wait for a healthy new version (default ${DEFAULT_HEALTH_TIMEOUT_SECONDS})`,
			},
			{
				name: "health-probes",
				type: "string",
				value: "<n>",
				description: `good health answers in a row a version needs (default ${DEFAULT_HEALTH_PROBES})`,
			},
			{
				name: "health-window",
				type: "string",
				value: "<seconds>",
				description: `the good answers must span at least this long (default ${DEFAULT_HEALTH_WINDOW_SECONDS})`,
			},
			{
				name: "secrets-file",
				type: "string",
				value: "<file>",
				description: "JSON or .env file of Worker secrets to upload with the version",
			},
			{
				name: "secrets-from-env",
				type: "string",
				value: "<NAME,...>",
				description: "environment variables to upload as Worker secrets",
			},
			{
				name: "auto-restore",
				type: "boolean",
				description: "passed to migrate: restore the bookmark if a migration fails",
			},
			LOCK_TIMEOUT_FLAG,
		],
		examples: [
			"workers-pipeline deploy",
			"workers-pipeline deploy --env staging",
			"workers-pipeline deploy --env production --skip-migrate --health-timeout 120",
			"workers-pipeline deploy --env production --steps 5,25,100",
			"workers-pipeline deploy --env staging --strategy immediate",
		],
		run: async (input) => {
			const [{ deployStep, parseSteps }, { lintEnvironment }, { assertSecretNames }] =
				await Promise.all([
					import("../steps/deploy.ts"),
					import("../config/load.ts"),
					import("../steps/_secret-names.ts"),
				]);
			const secretsFromEnv = str(input.flags, "secrets-from-env")
				?.split(",")
				.map((s) => s.trim())
				.filter(Boolean);
			// Refused before anything is sent, for every face alike (CLI, Dagger module, Actions).
			assertSecretNames(secretsFromEnv ?? []);
			const args = await remoteArgs(input);
			const result = await deployStep.run(input.context("deploy"), {
				...args,
				skipMigrate: input.flags["skip-migrate"] === true,
				strategy: strategyOf(input.flags),
				steps: parseSteps(str(input.flags, "steps")),
				healthTimeoutSeconds: seconds(input.flags, "health-timeout"),
				healthProbes: count(input.flags, "health-probes"),
				healthWindowSeconds: seconds(input.flags, "health-window"),
				secretsFile: str(input.flags, "secrets-file"),
				secretsFromEnv,
				autoRestore: input.flags["auto-restore"] === true,
				lockTimeoutSeconds: seconds(input.flags, "lock-timeout"),
			});
			// An environment without its own name deploys a different Worker than the user may think.
			result.findings.unshift(...lintEnvironment(args.project, args.env));
			return [result];
		},
	},
	{
		name: "rollback",
		alwaysReport: true,
		summary:
			"Rolls the Worker back (to --to <version-id>, else the previous version) and confirms what is live. D1 is not touched.",
		flags: [
			ENV_FLAG,
			{
				name: "to",
				type: "string",
				value: "<version-id>",
				description: "the version to make live (default: the previous one)",
			},
		],
		examples: [
			"workers-pipeline rollback",
			"workers-pipeline rollback --env production",
			"workers-pipeline rollback --env staging --to <version-id>",
		],
		run: async (input) => [
			await (await import("../steps/deploy.ts")).rollbackStep.run(input.context("rollback"), {
				project: await loadProject(input),
				env: str(input.flags, "env"),
				to: str(input.flags, "to"),
			}),
		],
	},
);

const reportDirOf = (input: CommandInput, project: ProjectConfig) =>
	path.resolve(project.root, str(input.flags, "report-dir") ?? DEFAULT_REPORT_DIR);

function portFlag(flags: ParsedFlags): number | undefined {
	const raw = str(flags, "port");
	if (raw === undefined) return undefined;
	const port = Number(raw);
	if (!/^\d+$/.test(raw) || port < 1 || port > 65_535)
		throw new UserError(`--port expects a TCP port (1-65535), not "${raw}".`);
	return port;
}

COMMANDS.push(
	{
		name: "e2e",
		summary:
			"Playwright end-to-end tests: builds (or reuses the build), serves the app locally as on Workers with a local D1 migrated and seeded, waits for HTTP 200, runs the tests; report and traces under the report dir.",
		flags: [
			{
				name: "base-url",
				type: "string",
				value: "<url>",
				description: "run only the tests, against this URL (no build, no local app)",
			},
		],
		examples: [
			"workers-pipeline e2e",
			"workers-pipeline e2e --base-url https://pr-12-my-app.example.workers.dev --json",
		],
		run: async (input) => {
			const project = await loadProject(input);
			const baseUrl = str(input.flags, "base-url");
			if (baseUrl !== undefined && !(/^https?:\/\//.test(baseUrl) && URL.canParse(baseUrl)))
				throw new UserError(
					`--base-url expects an absolute http(s) URL, not "${baseUrl}" (e.g. http://127.0.0.1:8787).`,
				);
			const [{ runStepSafely }, { e2eStep }] = await Promise.all([
				import("../steps/_run-step.ts"),
				import("../steps/e2e.ts"),
			]);
			return [
				await runStepSafely(e2eStep, input.context("e2e"), {
					project,
					baseUrl,
					reportDir: reportDirOf(input, project),
				}),
			];
		},
	},
	{
		name: "serve",
		summary:
			"Serves the app in the foreground as `e2e` does (build reused, local D1 migrated and seeded) until interrupted: what a Dagger service runs.",
		flags: [
			{
				name: "host",
				type: "string",
				value: "<host>",
				description: "address to listen on (default 127.0.0.1; 0.0.0.0 inside a container)",
			},
			{
				name: "port",
				type: "string",
				value: "<port>",
				description: "port to listen on (default: a free one)",
			},
		],
		examples: [
			"workers-pipeline serve --port 8787",
			"workers-pipeline serve --host 0.0.0.0 --port 8787",
		],
		run: async (input) => {
			const [{ runStepSafely }, { serveStep }] = await Promise.all([
				import("../steps/_run-step.ts"),
				import("../steps/serve.ts"),
			]);
			return [
				await runStepSafely(serveStep, input.context("serve"), {
					project: await loadProject(input),
					host: str(input.flags, "host"),
					port: portFlag(input.flags),
				}),
			];
		},
	},
);

COMMANDS.push({
	name: "format",
	summary:
		"The project's own format check (format.command, a `format:check` script, prettier --check, or biome format) and its architecture check (dependency-cruiser rules) when configured, each its own line.",
	flags: [],
	examples: ["workers-pipeline format", "workers-pipeline format --json"],
	run: async (input) => {
		const project = await loadProject(input);
		const [{ runStepSafely }, { architectureStep, formatStep }] = await Promise.all([
			import("../steps/_run-step.ts"),
			import("../steps/format.ts"),
		]);
		return Promise.all([
			runStepSafely(formatStep, input.context("format"), { project }),
			runStepSafely(architectureStep, input.context("architecture"), { project }),
		]);
	},
});

COMMANDS.push({
	name: "mutation",
	summary:
		"Stryker mutation testing, incremental: only mutants in files changed since the base branch (--all: every mutant); score and surviving mutants in the report; advisory unless a threshold is configured (mutation.threshold or thresholds.break).",
	flags: [
		{
			name: "all",
			type: "boolean",
			description: "every mutant of the Stryker config, not only changed files (the weekly run)",
		},
		{
			name: "since",
			type: "string",
			value: "<ref>",
			description:
				"what changed files are measured against (default: mutation.base, origin/$GITHUB_BASE_REF, origin/main, main)",
		},
	],
	examples: [
		"workers-pipeline mutation",
		"workers-pipeline mutation --since origin/main --json",
		"workers-pipeline mutation --all",
	],
	run: async (input) => {
		const project = await loadProject(input);
		const [{ runStepSafely }, { mutationStep }] = await Promise.all([
			import("../steps/_run-step.ts"),
			import("../steps/mutation.ts"),
		]);
		return [
			await runStepSafely(mutationStep, input.context("mutation"), {
				project,
				all: input.flags.all === true,
				since: str(input.flags, "since"),
				reportDir: reportDirOf(input, project),
			}),
		];
	},
});

COMMANDS.push({
	name: "preview",
	alwaysReport: true,
	summary:
		"A pull request's preview: its own D1 database (created on first use, migrated, seeded from seed.sql once), a Worker Preview pr-<N> (wrangler preview) bound to it, health-checked; the URL and migration summary go to the report and .reports/preview-comment.md. --cleanup deletes the Preview and the database (a no-op when they are gone).",
	flags: [
		REQUIRED_ENV_FLAG,
		BINDING_FLAG,
		{
			name: "pr",
			type: "string",
			value: "<N>",
			required: true,
			description: "the pull request number",
		},
		{
			name: "cleanup",
			type: "boolean",
			description: "delete the PR's database (when the PR closes)",
		},
		{
			name: "seed",
			type: "string",
			value: "<file>",
			description: "SQL run once on a newly created PR database (default seed.sql when present)",
		},
		{
			name: "health-url",
			type: "string",
			value: "<url>",
			description: "probe this URL instead of the Preview URL",
		},
		{
			name: "comment-file",
			type: "string",
			value: "<file>",
			description: "where the PR comment goes (default .reports/preview-comment.md)",
		},
		{
			name: "health-timeout",
			type: "string",
			value: "<seconds>",
			description: `how long to wait for a healthy preview (default ${DEFAULT_HEALTH_TIMEOUT_SECONDS})`,
		},
		{
			name: "health-probes",
			type: "string",
			value: "<n>",
			description: `good health answers in a row needed (default ${DEFAULT_HEALTH_PROBES})`,
		},
		{
			name: "health-window",
			type: "string",
			value: "<seconds>",
			description: `the good answers must span at least this long (default ${DEFAULT_HEALTH_WINDOW_SECONDS})`,
		},
	],
	examples: [
		"workers-pipeline preview --env staging --pr 42",
		"workers-pipeline preview --env staging --pr 42 --cleanup",
	],
	run: async (input) => [
		await (await import("../steps/preview.ts")).previewStep.run(input.context("preview"), {
			...(await remoteArgs(input)),
			// preview requires --env (REQUIRED_ENV_FLAG): it is based on an environment's Worker.
			env: str(input.flags, "env") as string,
			pr: count(input.flags, "pr") as number,
			cleanup: input.flags.cleanup === true,
			seedFile: str(input.flags, "seed"),
			healthUrl: str(input.flags, "health-url"),
			commentFile: str(input.flags, "comment-file"),
			healthTimeoutSeconds: seconds(input.flags, "health-timeout"),
			healthProbes: count(input.flags, "health-probes"),
			healthWindowSeconds: seconds(input.flags, "health-window"),
		}),
	],
});

export const findCommand = (name: string) => COMMANDS.find((c) => c.name === name);
