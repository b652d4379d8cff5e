import { describe, expect, it } from "vitest";
import { GLOBAL_FLAGS } from "../../ci/cli/args.ts";
import { COMMANDS } from "../../ci/cli/commands.ts";
import { readmeQuickstart } from "./_fixture.ts";

// The quickstart's commands are what fixtures.e2e.test.ts runs on each fixture app; here, that
// each names a real command with real flags (so the README cannot drift from the CLI).
describe("README: Use it on your app", () => {
	it.each(readmeQuickstart())("names a real command and flags: %s", (command, ...args) => {
		const def = COMMANDS.find((c) => c.name === command);
		expect(def, `no command ${command}`).toBeDefined();
		const flags = new Set([...(def?.flags ?? []), ...GLOBAL_FLAGS].map((f) => f.name));
		for (const arg of args.filter((a) => a.startsWith("--"))) {
			expect(flags.has(arg.replace(/^--(no-)?/, "").split("=")[0] as string), arg).toBe(true);
		}
	});
});
