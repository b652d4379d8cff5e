// The CLI surface this module drives, kept as data so test/dagger/cli-drift.test.ts can hold it
// against the CLI's own command table (ci/cli/commands.ts).

export type FlagType = "boolean" | "string";

export interface CliFlag {
	name: string;
	type: FlagType;
	required?: boolean;
}

export interface CliInvocation {
	command: string;
	flags: readonly CliFlag[];
}

// Accepted by every command; the module always sets --cwd and --report-dir itself.
export const GLOBAL_FLAGS = [
	{ name: "cwd", type: "string" },
	{ name: "config", type: "string" },
	{ name: "json", type: "boolean" },
	{ name: "report-dir", type: "string" },
] as const satisfies readonly CliFlag[];

// One entry per Dagger function: the subcommand it runs and every flag it may pass. Flags are
// shared objects where the CLI shares them, so one rename in the CLI is one edit here.
const env = { name: "env", type: "string", required: true } as const;
// Without --env every command but preview works on the top-level Worker, as wrangler does.
const optionalEnv = { name: "env", type: "string" } as const;
const binding = { name: "binding", type: "string" } as const;
const lockTimeout = { name: "lock-timeout", type: "string" } as const;
const autoRestore = { name: "auto-restore", type: "boolean" } as const;
const allowOutOfOrder = { name: "allow-out-of-order", type: "boolean" } as const;
const cache = { name: "cache", type: "boolean" } as const;
const healthTimeout = { name: "health-timeout", type: "string" } as const;
const healthProbes = { name: "health-probes", type: "string" } as const;
const healthWindow = { name: "health-window", type: "string" } as const;

export const cliInvocations = {
	// Not a function of its own: installed() runs it before lint, test and build.
	install: { command: "install", flags: [{ name: "scripts", type: "string" }] },
	lint: { command: "lint", flags: [] },
	test: { command: "test", flags: [] },
	build: { command: "build", flags: [optionalEnv, cache] },
	ci: {
		command: "ci",
		flags: [{ name: "parity", type: "boolean" }, { name: "build", type: "boolean" }, cache],
	},
	migrationTest: {
		command: "migration-test",
		flags: [
			{ name: "dir", type: "string" },
			{ name: "env", type: "string" },
			binding,
			{ name: "update-snapshot", type: "boolean" },
			{ name: "parity", type: "boolean" },
			{ name: "data", type: "boolean" },
			cache,
		],
	},
	plan: { command: "plan", flags: [optionalEnv, binding, allowOutOfOrder] },
	migrate: {
		command: "migrate",
		flags: [
			optionalEnv,
			binding,
			{ name: "dry-run", type: "boolean" },
			autoRestore,
			{ name: "rehearse", type: "boolean" },
			allowOutOfOrder,
			lockTimeout,
			{ name: "lock-ttl", type: "string" },
			{ name: "to", type: "string" },
		],
	},
	baseline: {
		command: "baseline",
		flags: [optionalEnv, binding, { name: "through", type: "string", required: true }, lockTimeout],
	},
	restore: {
		command: "restore",
		flags: [
			optionalEnv,
			binding,
			{ name: "bookmark", type: "string", required: true },
			lockTimeout,
		],
	},
	deploy: {
		command: "deploy",
		flags: [
			optionalEnv,
			binding,
			{ name: "skip-migrate", type: "boolean" },
			healthTimeout,
			healthProbes,
			healthWindow,
			{ name: "secrets-file", type: "string" },
			{ name: "secrets-from-env", type: "string" },
			autoRestore,
			lockTimeout,
			{ name: "strategy", type: "string" },
			{ name: "steps", type: "string" },
		],
	},
	preview: {
		command: "preview",
		flags: [
			env,
			binding,
			{ name: "pr", type: "string", required: true },
			{ name: "cleanup", type: "boolean" },
			{ name: "seed", type: "string" },
			{ name: "health-url", type: "string" },
			{ name: "comment-file", type: "string" },
			healthTimeout,
			healthProbes,
			healthWindow,
		],
	},
	serve: {
		command: "serve",
		flags: [
			{ name: "host", type: "string" },
			{ name: "port", type: "string" },
		],
	},
	e2e: { command: "e2e", flags: [{ name: "base-url", type: "string" }] },
	format: { command: "format", flags: [] },
	mutation: {
		command: "mutation",
		flags: [
			{ name: "all", type: "boolean" },
			{ name: "since", type: "string" },
		],
	},
	rollback: {
		command: "rollback",
		flags: [optionalEnv, { name: "to", type: "string" }],
	},
} as const satisfies Record<string, CliInvocation>;

// CLI commands the module deliberately does not expose, each with the reason.
export const NOT_EXPOSED: Readonly<Record<string, string>> = {
	init: "writes files into the caller's own working tree (settings, health route, workflow, snapshot): run it once on the host with `npx workers-pipeline init` and commit what it wrote",
};

// Commands or flags the module would pass before the CLI has them (none now): cli-drift.test.ts
// checks each one as soon as the CLI has it and then asks for its removal from this list.
export const AWAITING_CLI: Readonly<Record<string, string>> = {};

export type FunctionName = keyof typeof cliInvocations;
type Flag<F extends FunctionName> =
	| (typeof cliInvocations)[F]["flags"][number]
	| (typeof GLOBAL_FLAGS)[number];

export type FlagValues<F extends FunctionName> = {
	[K in Flag<F> as K["name"]]?:
		| (K["type"] extends "boolean" ? boolean : string | number)
		| undefined;
};

// Builds argv in table order: true is `--flag`, false is `--no-flag` (the CLI negates any boolean),
// undefined is left out; the table is the only place a flag can come from.
export const cliArgs = <F extends FunctionName>(fn: F, values: FlagValues<F>): string[] => {
	const { command, flags } = cliInvocations[fn];
	const given = values as Record<string, string | number | boolean | undefined>;
	const args: string[] = [command];
	for (const flag of [...GLOBAL_FLAGS, ...flags] as readonly CliFlag[]) {
		const value = given[flag.name];
		if (value === undefined) {
			if (flag.required) throw new Error(`workers-pipeline ${command}: --${flag.name} is required`);
			continue;
		}
		if (flag.type === "boolean") args.push(value ? `--${flag.name}` : `--no-${flag.name}`);
		else args.push(`--${flag.name}`, String(value));
	}
	return args;
};
