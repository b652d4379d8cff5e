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

// One entry per Dagger function: the subcommand it runs and every flag it may pass.
export const cliInvocations = {
	lint: { command: "lint", flags: [] },
	test: { command: "test", flags: [] },
	build: { command: "build", flags: [] },
	ci: { command: "ci", flags: [{ name: "parity", type: "boolean" }] },
	migrationTest: {
		command: "migration-test",
		flags: [
			{ name: "dir", type: "string" },
			{ name: "env", type: "string" },
			{ name: "binding", type: "string" },
			{ name: "update-snapshot", type: "boolean" },
			{ name: "parity", type: "boolean" },
		],
	},
	plan: { command: "plan", flags: [{ name: "env", type: "string", required: true }] },
	migrate: {
		command: "migrate",
		flags: [
			{ name: "env", type: "string", required: true },
			{ name: "dry-run", type: "boolean" },
			{ name: "auto-restore", type: "boolean" },
			{ name: "rehearse", type: "boolean" },
			{ name: "allow-out-of-order", type: "boolean" },
			{ name: "lock-timeout", type: "string" },
		],
	},
	deploy: {
		command: "deploy",
		flags: [
			{ name: "env", type: "string", required: true },
			{ name: "skip-migrate", type: "boolean" },
			{ name: "health-timeout", type: "string" },
			{ name: "secrets-file", type: "string" },
		],
	},
	rollback: {
		command: "rollback",
		flags: [
			{ name: "env", type: "string", required: true },
			{ name: "to", type: "string" },
		],
	},
} as const satisfies Record<string, CliInvocation>;

// CLI commands the module deliberately does not expose (operator tools, run from a laptop).
export const NOT_EXPOSED = ["baseline", "restore"] as const;

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
