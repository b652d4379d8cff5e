// Holds the module's CLI invocations against the CLI's own command table (ci/cli/commands.ts):
// every function passes exactly its command's flags, with the CLI's types, and every command
// is either a function or listed in NOT_EXPOSED with a reason.
import { describe, expect, it } from "vitest";
import {
	AWAITING_CLI,
	type CliFlag,
	cliArgs,
	cliInvocations,
	type FunctionName,
	GLOBAL_FLAGS,
	NOT_EXPOSED,
} from "../../.dagger/src/cli.ts";
import { GLOBAL_FLAGS as CLI_GLOBAL_FLAGS, parseFlags } from "../../ci/cli/args.ts";
import { COMMANDS } from "../../ci/cli/commands.ts";

const byName = new Map(COMMANDS.map((c) => [c.name, c]));
const shape = (flags: readonly CliFlag[]) =>
	flags.map((f) => `--${f.name} ${f.type}${f.required ? " (required)" : ""}`).sort();

describe("module ↔ CLI command table", () => {
	for (const [fn, invocation] of Object.entries(cliInvocations)) {
		const cliLacks = !byName.has(invocation.command) && invocation.command in AWAITING_CLI;
		// A flag another engineer adds this round is held to the CLI once the CLI has it.
		const awaited = (f: CliFlag) =>
			`${invocation.command} --${f.name}` in AWAITING_CLI &&
			!byName.get(invocation.command)?.flags.some((c) => c.name === f.name);
		const flags = invocation.flags.filter((f) => !awaited(f as CliFlag));
		it.skipIf(cliLacks)(`${fn} → \`${invocation.command}\` passes exactly the CLI's flags`, () => {
			const cli = byName.get(invocation.command);
			expect(cli, `${invocation.command} is not a CLI command`).toBeDefined();
			expect(shape(flags)).toEqual(shape(cli?.flags ?? []));
		});

		// Every flag set at once (true, then false for switches): the CLI's own parser accepts the
		// argv the module builds and reads back the same values.
		it.skipIf(cliLacks).each([true, false])(
			`${fn}: the CLI parses the module's argv (switches %s)`,
			(on) => {
				const cli = byName.get(invocation.command);
				const values: Record<string, string | boolean> = {};
				for (const f of [...GLOBAL_FLAGS, ...flags] as CliFlag[])
					values[f.name] = f.type === "boolean" ? on : `v-${f.name}`;
				const [command, ...argv] = cliArgs(fn as FunctionName, values);
				expect(command).toBe(invocation.command);
				const parsed = parseFlags(
					argv,
					[...CLI_GLOBAL_FLAGS, ...(cli?.flags ?? [])],
					String(command),
				);
				expect(parsed).toEqual(values);
			},
		);
	}

	it("uses only global flags the CLI accepts", () => {
		const known = new Set(shape(CLI_GLOBAL_FLAGS));
		for (const flag of shape(GLOBAL_FLAGS)) expect(known).toContain(flag);
	});

	it("leaves no CLI command unaccounted for (exposed, or in NOT_EXPOSED with a reason)", () => {
		const exposed = new Set<string>(Object.values(cliInvocations).map((i) => i.command));
		const missing = COMMANDS.map((c) => c.name).filter(
			(n) => !exposed.has(n) && !(n in NOT_EXPOSED),
		);
		expect(missing).toEqual([]);
		for (const [name, reason] of Object.entries(NOT_EXPOSED)) {
			expect(byName.has(name), `NOT_EXPOSED names ${name}, not a CLI command`).toBe(true);
			expect(exposed.has(name), `${name} is both exposed and NOT_EXPOSED`).toBe(false);
			expect(reason.length).toBeGreaterThan(10);
		}
	});

	it("awaits only what the CLI still lacks (empty AWAITING_CLI once every branch is merged)", () => {
		const present = Object.keys(AWAITING_CLI).filter((key) => {
			const [command, flag] = key.split(" --") as [string, string?];
			const cli = byName.get(command);
			return flag === undefined ? cli !== undefined : cli?.flags.some((f) => f.name === flag);
		});
		expect(present, "the CLI has these now: remove them from AWAITING_CLI").toEqual([]);
	});

	it("refuses to build a command line without a required flag", () => {
		expect(() => cliArgs("restore", { env: "staging" })).toThrow(/--bookmark is required/);
	});
});
