import { existsSync } from "node:fs";
import path from "node:path";
import { loadProjectConfig } from "../config/load.ts";
import { type ProjectConfig, pipelineSettingsSchema } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import type { StepResult } from "../report/model.ts";
import type { StepContext } from "../steps/_step.ts";
import { runCi, runStepSafely } from "../steps/ci.ts";
import { lintStep } from "../steps/lint.ts";
import { migrationTestStep } from "../steps/migration-test.ts";
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
			"Everything a pull request needs, concurrently: lint (D1 lint, biome, tsc), tests, migration test with wrangler parity.",
		flags: [
			{
				name: "parity",
				type: "boolean",
				description:
					"compare the migration replay with real wrangler (default: on; --no-parity to skip)",
			},
		],
		examples: ["workers-pipeline ci", "workers-pipeline ci --json --no-parity"],
		run: (input) =>
			runCi(input.context, { project: loadProject(input), parity: input.flags.parity !== false }),
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
			}),
		],
	},
];

export const findCommand = (name: string) => COMMANDS.find((c) => c.name === name);
