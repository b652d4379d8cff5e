import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

// `workers-pipeline --help` must not load the steps, zod, the Cloudflare SDK, wrangler or
// better-sqlite3 (issue 9, item 2): the command table imports steps inside `run`. This walks the
// static imports from the CLI's entry, as Node loads them before any code runs.

const REPO = path.resolve(import.meta.dirname, "../../..");
const ENTRY = "ci/cli/main.ts";

/** Static value imports and re-exports of a module; `import type` is erased, everything else loads. */
function staticImports(source: string): string[] {
	const found: string[] = [];
	const pattern =
		/^\s*(?:import|export)\s+(type\s+)?(?:[\w*\s{},$]*?\s+from\s+)?["']([^"']+)["']/gm;
	for (const match of source.matchAll(pattern)) {
		if (!match[1]) found.push(match[2] as string);
	}
	return found;
}

function startupGraph(entry = ENTRY): { files: string[]; packages: string[] } {
	const files = new Set<string>();
	const packages = new Set<string>();
	const visit = (file: string) => {
		if (files.has(file)) return;
		files.add(file);
		for (const spec of staticImports(readFileSync(path.join(REPO, file), "utf8"))) {
			if (spec.startsWith(".")) visit(path.posix.join(path.posix.dirname(file), spec));
			else if (!spec.startsWith("node:")) packages.add(spec);
		}
	};
	visit(entry);
	return { files: [...files].sort(), packages: [...packages].sort() };
}

describe("staticImports()", () => {
	it.each([
		['import { a } from "./a.ts";', ["./a.ts"]],
		['import type { A } from "./a.ts";', []],
		['import { type A, b } from "./a.ts";', ["./a.ts"]],
		['import {\n\ta,\n\tb,\n} from "zod";', ["zod"]],
		['export { x } from "./x.ts";', ["./x.ts"]],
		['export type { X } from "./x.ts";', []],
		['import "./side-effect.ts";', ["./side-effect.ts"]],
		['const m = await import("./lazy.ts");', []],
	])("%j → %j", (source, expected) => {
		expect(staticImports(source)).toEqual(expected);
	});
});

describe("the CLI's start-up import graph", () => {
	const graph = startupGraph();

	it("loads no step module (steps are imported when their command runs)", () => {
		expect(graph.files.filter((f) => f.startsWith("ci/steps/"))).toEqual([]);
	});

	it("loads no npm package", () => {
		expect(graph.packages).toEqual([]);
	});

	it("still reaches the command table", () => {
		expect(graph.files).toContain("ci/cli/commands.ts");
	});
});

// The 200-migration start-up target (issue 9, item 2) is migration-test's: its step loads no other
// step (steps/ci.ts imports them all), and its command imports only it.
describe("migration-test's import graph", () => {
	it("holds no other step", () => {
		const steps = startupGraph("ci/steps/migration-test.ts").files.filter((f) =>
			f.startsWith("ci/steps/"),
		);
		expect(steps).toEqual(["ci/steps/_step.ts", "ci/steps/migration-test.ts"]);
	});

	it("is all the migration-test command imports", () => {
		expect(commandImports("migration-test")).toEqual(["../steps/migration-test.ts"]);
	});
});

/** The modules a command's `run` imports, from the command table's text. */
function commandImports(name: string): string[] {
	const commands = readFileSync(path.join(REPO, "ci/cli/commands.ts"), "utf8");
	// A command entry of the table (one tab deeper names a nested value, e.g. a flag).
	const body = commands.slice(commands.indexOf(`\n\t{\n\t\tname: "${name}",`));
	const run = body.slice(body.indexOf("run: async"), body.indexOf("\n\t},\n"));
	return [...run.matchAll(/import\("([^"]+)"\)/g)].map((m) => m[1] as string);
}

// steps/ci.ts imports every step; a single-step command runs its step through steps/_run-step.ts.
describe.each([
	["lint", "lint.ts"],
	["test", "test.ts"],
	["install", "install.ts"],
	["build", "build.ts"],
])("the %s command's import graph", (command, step) => {
	const imports = commandImports(command);

	it("is runStepSafely's module and its own step", () => {
		expect(imports).toEqual(["../steps/_run-step.ts", `../steps/${step}`]);
	});

	it("holds no other step", () => {
		// Private `_` modules (helpers, the step contract) are shared; a step module is not.
		const steps = imports.flatMap((spec) =>
			startupGraph(path.posix.join("ci/cli", spec)).files.filter((f) =>
				/^ci\/steps\/[^_/][^/]*$/.test(f),
			),
		);
		expect([...new Set(steps)]).toEqual([`ci/steps/${step}`]);
	});
});
