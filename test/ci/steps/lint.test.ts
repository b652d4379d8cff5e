import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { PipelineSettings } from "../../../ci/config/schema.ts";
import {
	type LintToolInputs,
	parseTypecheckOutput,
	planLintTools,
} from "../../../ci/steps/lint.ts";
import { captureCli } from "../../support/cli.ts";

const inputs = (over: Partial<LintToolInputs> = {}): LintToolInputs => ({
	settings: { biome: true, typecheck: true } as PipelineSettings["lint"],
	scripts: {},
	pm: { name: "pnpm", version: "9.15.0", source: "packageManager", lockfile: "pnpm-lock.yaml" },
	framework: "worker",
	bins: new Set(),
	hasTsconfig: true,
	envPath: "/nonexistent",
	...over,
});
const pnpmRun = (script: string) => ["npx", "--yes", "pnpm@9.15.0", "run", script];

describe("planLintTools()", () => {
	it("should run the project's own lint script with its package manager", () => {
		const { tools } = planLintTools(
			inputs({ scripts: { lint: "eslint ." }, bins: new Set(["biome"]) }),
		);
		expect(tools.find((t) => t.kind === "lint")?.argv).toEqual(pnpmRun("lint"));
	});

	it("should prefer lint.command over the script, and fall back to biome, then skip", () => {
		const command = planLintTools(
			inputs({
				settings: { biome: true, typecheck: false, command: ["eslint", "src"] },
				scripts: { lint: "next lint" },
			}),
		);
		expect(command.tools.map((t) => t.argv)).toEqual([["eslint", "src"]]);
		const biome = planLintTools(inputs({ bins: new Set(["biome"]) }));
		expect(biome.tools[0]?.argv).toEqual(["biome", "check", "--colors=off", "."]);
		const none = planLintTools(inputs());
		expect(none.tools.filter((t) => t.kind === "lint")).toEqual([]);
		expect(none.skipped).toContain("lint skipped (no lint script, no lint.command, no biome)");
	});

	it("should run a format check from a script or prettier, and say when there is none", () => {
		expect(
			planLintTools(inputs({ scripts: { "format:check": "prettier -c ." } })).tools.find(
				(t) => t.kind === "format",
			)?.argv,
		).toEqual(pnpmRun("format:check"));
		expect(
			planLintTools(inputs({ bins: new Set(["prettier"]) })).tools.find((t) => t.kind === "format")
				?.argv,
		).toEqual(["prettier", "--check", "."]);
		expect(planLintTools(inputs()).skipped).toContain(
			"format check skipped (no format:check script, no prettier)",
		);
	});

	it("should leave the format check to the format step when told (ci runs it once)", () => {
		const plan = planLintTools(
			inputs({
				scripts: { "format:check": "prettier -c ." },
				bins: new Set(["prettier"]),
				format: false,
			}),
		);
		expect(plan.tools.filter((t) => t.kind === "format")).toEqual([]);
		expect(plan.skipped).toContain("format check in the format step");
	});

	it("should generate Next's types (and cf-typegen's) before the typecheck of a Next app", () => {
		const { tools } = planLintTools(
			inputs({
				framework: "next",
				bins: new Set(["next", "tsc"]),
				scripts: { "cf-typegen": "wrangler types" },
			}),
		);
		const typecheck = tools.find((t) => t.kind === "typecheck");
		expect(typecheck?.before).toEqual([["next", "typegen"], pnpmRun("cf-typegen")]);
		expect(typecheck?.argv.slice(0, 4)).toEqual(["tsc", "--noEmit", "-p", "tsconfig.json"]);
	});

	it.each([
		[{ scripts: { typecheck: "tsc -b" } }, pnpmRun("typecheck")],
		[{ bins: new Set(["tsc"]) }, ["tsc", "--noEmit", "-p", "tsconfig.json", "--pretty", "false"]],
		[{ bins: new Set(["tsc"]), hasTsconfig: false }, undefined],
		[{ bins: new Set(["tsc"]), settings: { biome: true, typecheck: false } }, undefined],
	] as const)("should pick the typecheck for %j", (over, argv) => {
		const plan = planLintTools(inputs(over as Partial<LintToolInputs>));
		expect(plan.tools.find((t) => t.kind === "typecheck")?.argv).toEqual(argv);
		if (!argv) expect(plan.skipped.some((s) => s.startsWith("typecheck"))).toBe(true);
	});
});

describe("planLintTools(): the typecheck script", () => {
	it.each([
		[{ typecheck: "tsc --noEmit", check: "svelte-check" }, "typecheck script"],
		[{ check: "svelte-kit sync && svelte-check --tsconfig ./tsconfig.json" }, "check script"],
		[{ check: "astro check" }, "check script"],
		// biome's `check` lints and formats: not a typecheck, so tsc runs.
		[{ check: "biome check ." }, "tsc"],
	])("should pick %j as %s", (scripts, source) => {
		const { tools } = planLintTools(inputs({ scripts, bins: new Set(["tsc"]) }));
		expect(tools.find((t) => t.kind === "typecheck")?.source).toBe(source);
	});
});

describe("parseTypecheckOutput()", () => {
	it("should turn tsc's lines into findings, and anything else into one TYPECHECK finding", () => {
		expect(
			parseTypecheckOutput("src/a.ts(3,7): error TS2322: Type 'string' is not assignable.\n"),
		).toEqual([
			{
				code: "TS2322",
				severity: "error",
				file: "src/a.ts",
				line: 3,
				column: 7,
				message: "Type 'string' is not assignable.",
			},
		]);
		expect(parseTypecheckOutput("error: cannot find tsconfig")[0]?.code).toBe("TYPECHECK");
	});
});

describe("lint: a script whose tool is not installed", () => {
	const temps: string[] = [];
	afterAll(() => {
		for (const dir of temps) rmSync(dir, { recursive: true, force: true });
	});

	it("should say which tool is missing and how to install it, not only `exited with 127`", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-lint-missing-"));
		temps.push(dir);
		writeFileSync(path.join(dir, "wrangler.jsonc"), '{ "name": "app" }\n');
		writeFileSync(
			path.join(dir, "package.json"),
			JSON.stringify({ name: "app", scripts: { lint: "wp-no-such-linter ." } }),
		);
		writeFileSync(path.join(dir, "package-lock.json"), "{}");
		const run = await captureCli(["lint", "--json", "--cwd", dir], { cwd: dir });
		const report = JSON.parse(run.stdout) as { findings: { code: string; message: string }[] };
		const finding = report.findings.find((f) => f.code === "LINT_FAILED");
		expect(run.code).toBe(1);
		expect(finding?.message).toMatch(
			/^npm run lint exited with 127 \(`wp-no-such-linter` is not installed: .*Install the dependencies first \(`npm ci`\)/,
		);
	});
});
