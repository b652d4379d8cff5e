// Holds the module's CLI invocations against the CLI's own command table. Commands the CLI
// doesn't have yet are `it.todo`; the ones it has must match flag for flag.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { type CliFlag, cliInvocations, GLOBAL_FLAGS, NOT_EXPOSED } from "../../.dagger/src/cli.ts";
import { ROOT } from "./support.ts";

interface CliTable {
	COMMANDS: { name: string; flags: CliFlag[] }[];
}

const commandsFile = join(ROOT, "ci/cli/commands.ts");
const argsFile = join(ROOT, "ci/cli/args.ts");
// Imported by computed URL so the typecheck doesn't depend on the CLI having landed.
const load = async <T>(file: string): Promise<T | undefined> =>
	existsSync(file) ? ((await import(pathToFileURL(file).href)) as T) : undefined;

const table = await load<CliTable>(commandsFile);
const cliGlobals = (await load<{ GLOBAL_FLAGS: CliFlag[] }>(argsFile))?.GLOBAL_FLAGS;
const byName = new Map((table?.COMMANDS ?? []).map((c) => [c.name, c]));
const shape = (flags: readonly CliFlag[]) =>
	flags.map((f) => `--${f.name} ${f.type}${f.required ? " (required)" : ""}`).sort();

describe("module ↔ CLI command table", () => {
	for (const [fn, invocation] of Object.entries(cliInvocations)) {
		const cli = byName.get(invocation.command);
		if (!cli) {
			it.todo(`${fn} → \`${invocation.command}\` (not in ci/cli/commands.ts COMMANDS yet)`);
			continue;
		}
		it(`${fn} → \`${invocation.command}\` passes exactly the CLI's flags`, () => {
			expect(shape(invocation.flags)).toEqual(shape(cli.flags));
		});
	}

	if (cliGlobals) {
		it("uses only global flags the CLI accepts", () => {
			const known = new Set(shape(cliGlobals));
			for (const flag of shape(GLOBAL_FLAGS)) expect(known).toContain(flag);
		});
	} else it.todo("global flags (ci/cli/args.ts GLOBAL_FLAGS not there yet)");

	if (table) {
		it("leaves no CLI command unaccounted for (exposed, or listed in NOT_EXPOSED)", () => {
			const exposed = new Set<string>([
				...Object.values(cliInvocations).map((i) => i.command),
				...NOT_EXPOSED,
			]);
			expect(table.COMMANDS.map((c) => c.name).filter((n) => !exposed.has(n))).toEqual([]);
		});
	} else it.todo("every CLI command accounted for (ci/cli/commands.ts not there yet)");
});
