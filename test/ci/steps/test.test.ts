import { describe, expect, it } from "vitest";
import type { PackageManager } from "../../../ci/steps/_toolchain.ts";
import { parseTestCounts, planTestCommand } from "../../../ci/steps/test.ts";

const yarn: PackageManager = {
	name: "yarn",
	version: "4.5.1",
	source: "packageManager",
	lockfile: "yarn.lock",
};

describe("planTestCommand()", () => {
	it.each([
		[
			"the default with a test script",
			["npm", "test"],
			{ test: "vitest run" },
			{ argv: ["npx", "--yes", "yarn@4.5.1", "run", "test"] },
		],
		[
			"the default without scripts",
			["npm", "test"],
			undefined,
			{ skip: expect.stringContaining("no test script") },
		],
		[
			"the default with npm init's placeholder",
			["npm", "test"],
			{ test: 'echo "Error: no test specified" && exit 1' },
			{ skip: expect.stringContaining("placeholder") },
		],
		["an explicit command, script or not", ["node", "--test"], {}, { argv: ["node", "--test"] }],
	])("should plan %s", (_, command, scripts, expected) => {
		expect(planTestCommand({ command, scripts, pm: yarn, envPath: "/nonexistent" })).toEqual(
			expected,
		);
	});
});

describe("parseTestCounts()", () => {
	it.each([
		["vitest", " Tests  2 failed | 40 passed (42)", { passed: 40, failed: 2 }],
		["node:test TAP", "# tests 3\n# pass 3\n# fail 0\n", { passed: 3, failed: 0 }],
		["node:test spec", "ℹ tests 1\nℹ suites 0\nℹ pass 1\nℹ fail 0\n", { passed: 1, failed: 0 }],
		["an unknown runner", "all good", {}],
	])("should read %s output", (_, output, counts) => {
		expect(parseTestCounts(output)).toEqual(counts);
	});
});
