import { existsSync } from "node:fs";
import path from "node:path";
import { loadProjectConfig } from "../config/load.ts";
import { type ProjectConfig, pipelineSettingsSchema } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import type { StepResult } from "../report/model.ts";
import { assertSecretNames } from "../steps/_secret-names.ts";
import type { StepContext } from "../steps/_step.ts";
import { buildStep } from "../steps/build.ts";
import { runCi, runStepSafely } from "../steps/ci.ts";
import { DEFAULT_HEALTH_TIMEOUT_SECONDS, deployStep, rollbackStep } from "../steps/deploy.ts";
import { lintStep } from "../steps/lint.ts";
import { DEFAULT_LOCK_TIMEOUT_SECONDS, migrateStep } from "../steps/migrate.ts";
import { migrationTestStep } from "../steps/migration-test.ts";
import { baselineStep, planStep, restoreStep } from "../steps/remote-admin.ts";
import { testStep } from "../steps/test.ts";
import type { FlagDef, ParsedFlags } from "./args.ts";

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
	run: (input: CommandInput) => Promise<StepResult[]>;
}

const str = (flags: ParsedFlags, name: string) => flags[name] as string | undefined;

function loadProject({ flags, cwd }: CommandInput): ProjectConfig {
	return loadProjectConfig({
		cwd: path.resolve(cwd, str(flags, "cwd") ?? "."),
		config: str(flags, "config"),
	});
}

// `migration-test --dir x` works in a directory with no wrangler config: defaults apply.
function loadProjectForDir(input: CommandInput): ProjectConfig {
	const { flags, cwd } = input;
	const root = path.resolve(cwd, str(flags, "cwd") ?? ".");
	const hasConfig =
		str(flags, "config") ||
		["wrangler.jsonc", "wrangler.json"].some((f) => existsSync(path.join(root, f)));
	if (hasConfig || !str(flags, "dir")) return loadProject(input);
	if (!existsSync(root))
		throw new UserError(`Project directory ${root} does not exist.`, "E_CONFIG_MISSING");
	return {
		root,
		wranglerPath: path.join(root, "wrangler.jsonc"),
		settingsPath: undefined,
		wrangler: { name: path.basename(root), d1_databases: [{ binding: "DB" }] },
		settings: pipelineSettingsSchema.parse({}),
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
	description: "wrangler environment (env.<name> in wrangler.jsonc)",
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
			"Everything a pull request needs, concurrently: lint (D1 lint, biome, tsc), tests, OpenNext build, migration test with wrangler parity.",
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
				description: "include the OpenNext build (default: on; --no-build to skip)",
			},
			CACHE_FLAG,
		],
		examples: [
			"workers-pipeline ci",
			"workers-pipeline ci --json --no-parity",
			"workers-pipeline ci --no-cache",
		],
		run: (input) => {
			const project = loadProject(input);
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
			"Builds the app with `opennextjs-cloudflare build` into .open-next/ and checks the Worker upload size (raw, gzip) against the budget and the Workers limits.",
		flags: [CACHE_FLAG],
		examples: ["workers-pipeline build", "workers-pipeline build --no-cache --json"],
		run: async (input) => [
			await runStepSafely(buildStep, input.context("build"), {
				project: loadProject(input),
				force: input.flags.cache === false,
			}),
		],
	},
	{
		name: "lint",
		summary:
			"D1 migration lint (naming, order, DEPENDS, D1-specific rules), biome check and tsc --noEmit.",
		flags: [],
		examples: ["workers-pipeline lint", "workers-pipeline lint --json"],
		run: async (input) => [
			await runStepSafely(lintStep, input.context("lint"), { project: loadProject(input) }),
		],
	},
	{
		name: "test",
		summary: "Runs the project's tests (workers-pipeline.jsonc test.command, default `npm test`).",
		flags: [],
		examples: ["workers-pipeline test"],
		run: async (input) => [
			await runStepSafely(testStep, input.context("test"), { project: loadProject(input) }),
		],
	},
	{
		name: "migration-test",
		summary:
			"Replays every migration on a fresh D1-like database, checks the schema snapshot, optionally against real wrangler.",
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
		],
		examples: [
			"workers-pipeline migration-test",
			"workers-pipeline migration-test --parity --json",
			"workers-pipeline migration-test --update-snapshot",
		],
		// Config errors are usage errors (exit 2), so this step is not wrapped in runStepSafely.
		run: async (input) => [
			await migrationTestStep.run(input.context("migration-test"), {
				project: loadProjectForDir(input),
				env: str(input.flags, "env"),
				binding: str(input.flags, "binding"),
				dir: str(input.flags, "dir"),
				updateSnapshot: input.flags["update-snapshot"] === true,
				parity: input.flags.parity === true,
				cacheDir:
					input.flags.cache === true
						? path.join(
								path.resolve(input.cwd, str(input.flags, "cwd") ?? "."),
								"node_modules",
								".cache",
								"workers-pipeline",
							)
						: undefined,
			}),
		],
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

function atLeast(value: number | undefined, min: number, name: string): number | undefined {
	if (value !== undefined && value < min) {
		throw new UserError(
			`--${name} must be at least ${min} seconds (a shorter lease would be taken over mid-run).`,
		);
	}
	return value;
}

const remoteArgs = (input: CommandInput) => ({
	project: loadProject(input),
	env: str(input.flags, "env") as string,
	binding: str(input.flags, "binding"),
});

COMMANDS.push(
	{
		name: "plan",
		summary:
			"Reads the remote D1 ledger: what is applied (with checksum status), what is pending, what is wrong. Writes nothing.",
		flags: [
			REQUIRED_ENV_FLAG,
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
			await planStep.run(input.context("plan"), {
				...remoteArgs(input),
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
			REQUIRED_ENV_FLAG,
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
				description: "first replay the pending migrations on an export of the remote data",
			},
			{
				name: "allow-out-of-order",
				type: "boolean",
				description: "apply pending migrations numbered below the newest applied one",
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
		],
		run: async (input) => [
			await migrateStep.run(input.context("migrate"), {
				...remoteArgs(input),
				dryRun: input.flags["dry-run"] === true,
				autoRestore: input.flags["auto-restore"] === true,
				rehearse: input.flags.rehearse === true,
				allowOutOfOrder: input.flags["allow-out-of-order"] === true,
				lockTimeoutSeconds: seconds(input.flags, "lock-timeout"),
				lockTtlSeconds: atLeast(seconds(input.flags, "lock-ttl"), 2, "lock-ttl"),
			}),
		],
	},
	{
		name: "baseline",
		alwaysReport: true,
		summary:
			"Adopts an existing database: records 0001..NNNN as applied, after checking the remote schema contains what they create.",
		flags: [
			REQUIRED_ENV_FLAG,
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
			await baselineStep.run(input.context("baseline"), {
				...remoteArgs(input),
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
			REQUIRED_ENV_FLAG,
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
			await restoreStep.run(input.context("restore"), {
				...remoteArgs(input),
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
			"Deploys this commit's build: records the live version, migrates D1, `wrangler deploy --tag <sha>`, polls the health endpoint, and rolls back to the recorded version when it is unhealthy.",
		flags: [
			REQUIRED_ENV_FLAG,
			BINDING_FLAG,
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
			"workers-pipeline deploy --env staging",
			"workers-pipeline deploy --env production --skip-migrate --health-timeout 120",
		],
		run: async (input) => {
			const secretsFromEnv = str(input.flags, "secrets-from-env")
				?.split(",")
				.map((s) => s.trim())
				.filter(Boolean);
			// Refused before anything is sent, for every face alike (CLI, Dagger module, Actions).
			assertSecretNames(secretsFromEnv ?? []);
			return [
				await deployStep.run(input.context("deploy"), {
					...remoteArgs(input),
					skipMigrate: input.flags["skip-migrate"] === true,
					healthTimeoutSeconds: seconds(input.flags, "health-timeout"),
					secretsFile: str(input.flags, "secrets-file"),
					secretsFromEnv,
					autoRestore: input.flags["auto-restore"] === true,
					lockTimeoutSeconds: seconds(input.flags, "lock-timeout"),
				}),
			];
		},
	},
	{
		name: "rollback",
		alwaysReport: true,
		summary:
			"Rolls the Worker back (to --to <version-id>, else the previous version) and confirms what is live. D1 is not touched.",
		flags: [
			REQUIRED_ENV_FLAG,
			{
				name: "to",
				type: "string",
				value: "<version-id>",
				description: "the version to make live (default: the previous one)",
			},
		],
		examples: [
			"workers-pipeline rollback --env production",
			"workers-pipeline rollback --env staging --to <version-id>",
		],
		run: async (input) => [
			await rollbackStep.run(input.context("rollback"), {
				project: loadProject(input),
				env: str(input.flags, "env") as string,
				to: str(input.flags, "to"),
			}),
		],
	},
);

export const findCommand = (name: string) => COMMANDS.find((c) => c.name === name);
