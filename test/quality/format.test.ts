// `format` and `architecture`: which check a project gets, and the real tools' verdicts.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
	type ProjectFacts,
	planArchitectureCheck,
	planFormatCheck,
} from "../../ci/steps/_checks.ts";
import { cli, REPO } from "./_support.ts";

const facts = (over: Partial<ProjectFacts>): ProjectFacts => ({
	root: "/p",
	scripts: {},
	files: [],
	hasPrettierKey: false,
	bin: () => undefined,
	...over,
});
const bins =
	(...names: string[]) =>
	(name: string) =>
		names.includes(name) ? `/p/node_modules/.bin/${name}` : undefined;

describe("planFormatCheck()", () => {
	it.each([
		[
			"the configured command first",
			facts({ scripts: { "format:check": "x" } }),
			["node", "fmt.js"],
			"node fmt.js",
		],
		[
			"the format:check script",
			facts({ scripts: { "format:check": "x" }, bin: bins("biome"), files: ["biome.json"] }),
			undefined,
			"npm run format:check",
		],
		// The scripts lint's format check knows (ci leaves the format check to this step).
		[
			"a check:format script",
			facts({ scripts: { "check:format": "x" } }),
			undefined,
			"npm run check:format",
		],
		[
			"a script with the project's package manager",
			facts({
				scripts: { "format:check": "x" },
				runScript: (name) => ["npx", "--yes", "pnpm@10.34.9", "run", name],
			}),
			undefined,
			"npx --yes pnpm@10.34.9 run format:check",
		],
		[
			"prettier with a config",
			facts({ bin: bins("prettier", "biome"), files: [".prettierrc", "biome.json"] }),
			undefined,
			"prettier --check .",
		],
		[
			"prettier configured in package.json",
			facts({ bin: bins("prettier"), hasPrettierKey: true }),
			undefined,
			"prettier --check .",
		],
		[
			"biome with biome.json",
			facts({ bin: bins("prettier", "biome"), files: ["biome.jsonc"] }),
			undefined,
			"biome format .",
		],
	] as const)("picks %s", (_, f, configured, display) => {
		expect(planFormatCheck(f, configured)?.display).toBe(display);
	});
	it.each([
		["nothing installed", facts({ files: ["biome.json", ".prettierrc"] })],
		["a formatter without its config", facts({ bin: bins("prettier", "biome") })],
	])("finds none with %s", (_, f) => {
		expect(planFormatCheck(f)).toBeUndefined();
	});
});

describe("planArchitectureCheck()", () => {
	it("runs dependency-cruiser with the project's rules over the configured paths", () => {
		const plan = planArchitectureCheck(
			facts({ bin: bins("depcruise"), files: [".dependency-cruiser.cjs"] }),
			{ paths: ["src", "lib"] },
		);
		expect(plan?.args).toEqual([
			"--config",
			".dependency-cruiser.cjs",
			"--output-type",
			"err",
			"src",
			"lib",
		]);
	});
	it.each([
		["rules without dependency-cruiser", facts({ files: [".dependency-cruiser.js"] })],
		["dependency-cruiser without rules", facts({ bin: bins("depcruise") })],
	])("is not configured with %s", (_, f) => {
		expect(planArchitectureCheck(f, { paths: ["src"] })).toBeUndefined();
	});
});

const dirs: string[] = [];
afterAll(() => {
	for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A project with biome (the repository's) and one source file. */
function project(source: string, settings: object = {}): string {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-quality-format-"));
	dirs.push(dir);
	symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
	writeFileSync(path.join(dir, "wrangler.jsonc"), JSON.stringify({ name: "fmt" }));
	writeFileSync(path.join(dir, "biome.json"), '{ "files": { "includes": ["src/**"] } }\n');
	writeFileSync(path.join(dir, "workers-pipeline.jsonc"), JSON.stringify(settings));
	mkdirSync(path.join(dir, "src"));
	writeFileSync(path.join(dir, "src", "index.ts"), source);
	return dir;
}

describe("workers-pipeline format (real biome)", () => {
	it("passes a formatted project; architecture is its own, skipped, line", async () => {
		const run = await cli(["format", "--cwd", project("export const a = 1;\n"), "--json"]);
		expect(run.code, run.stdout).toBe(0);
		const [format, architecture] = run.json().steps;
		expect(format).toMatchObject({ name: "format", ok: true, summary: "biome format .: ok" });
		expect(architecture).toMatchObject({ name: "architecture", skipped: true });
	});
	it("fails an unformatted file with biome's diff and how to fix it", async () => {
		const run = await cli(["format", "--cwd", project("export   const a=1\n"), "--json"]);
		expect(run.code).toBe(1);
		const finding = run.json().findings.find((f) => f.code === "FORMAT_CHECK_FAILED");
		expect(finding?.message).toContain("npx biome format --write .");
		expect(finding?.message).toContain("src/index.ts");
	});
	it("runs a configured architecture check and fails on its exit code", async () => {
		const dir = project("export const a = 1;\n", {
			architecture: {
				command: ["node", "-e", "console.error('src/a.ts → src/b.ts: no-cycle'); process.exit(1)"],
			},
		});
		const run = await cli(["format", "--cwd", dir, "--json"]);
		expect(run.code).toBe(1);
		const finding = run.json().findings.find((f) => f.code === "ARCHITECTURE_VIOLATION");
		expect(finding?.message).toContain("no-cycle");
	});
});
