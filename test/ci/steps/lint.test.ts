import { chmodSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { PipelineSettings } from "../../../ci/config/schema.ts";
import { type CheckPlan, type ProjectFacts, planFormatCheck } from "../../../ci/steps/_checks.ts";
import {
	type LintToolInputs,
	parseTypecheckOutput,
	planLintTools,
} from "../../../ci/steps/lint.ts";
import { captureCli } from "../../support/cli.ts";
import { makeProject, removeProjects } from "../../support/project.ts";

const inputs = (over: Partial<LintToolInputs> = {}): LintToolInputs => ({
	settings: { biome: true, typecheck: true } as PipelineSettings["lint"],
	scripts: {},
	pm: { name: "pnpm", version: "9.15.0", source: "packageManager", lockfile: "pnpm-lock.yaml" },
	framework: "worker",
	bins: new Set(),
	hasTsconfig: true,
	hasBiomeConfig: true,
	formatCheck: undefined,
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
		expect(none.skipped).toContain(
			"lint skipped (no lint script, no lint.command, no biome with biome.json)",
		);
	});

	it("should run the format check the format step plans, and say when there is none", () => {
		const facts = (over: Partial<ProjectFacts>): ProjectFacts => ({
			root: "/app",
			scripts: {},
			files: [],
			hasPrettierKey: false,
			bin: (name) => (name === "prettier" ? "/app/node_modules/.bin/prettier" : undefined),
			...over,
		});
		const formatOf = (f: ProjectFacts) =>
			planLintTools(inputs({ formatCheck: planFormatCheck(f) })).tools.find(
				(t) => t.kind === "format",
			);
		expect(formatOf(facts({ scripts: { "format:check": "prettier -c ." } }))?.argv).toEqual([
			"npm",
			"run",
			"format:check",
		]);
		const prettier = formatOf(facts({ files: [".prettierrc.json"] }));
		expect([prettier?.argv, prettier?.display]).toEqual([
			["/app/node_modules/.bin/prettier", "--check", "."],
			"prettier --check .",
		]);
		// Installed only as another tool's dependency (React Router, @astrojs/check): no rules chosen, no check.
		expect(formatOf(facts({}))).toBeUndefined();
		expect(planLintTools(inputs()).skipped).toContain(
			"format check skipped (no format:check script, no prettier or biome config)",
		);
	});

	it("should run biome only with its config, and not format twice when biome check lints", () => {
		expect(
			planLintTools(inputs({ bins: new Set(["biome"]), hasBiomeConfig: false })).skipped,
		).toContain("lint skipped (no lint script, no lint.command, no biome with biome.json)");
		const biome: CheckPlan = {
			file: "/app/node_modules/.bin/biome",
			args: ["format", "."],
			display: "biome format .",
			fix: "",
			source: "biome",
		};
		const plan = planLintTools(inputs({ bins: new Set(["biome"]), formatCheck: biome }));
		expect(plan.tools.map((t) => t.kind)).toEqual(["lint"]);
		expect(plan.skipped).toContain("format check in biome check");
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

describe("lint: the project's own tools, run", () => {
	afterAll(removeProjects);

	it("should agree with ci: prettier that another tool brought along is no format check, a prettier config makes it one", async () => {
		// A stand-in prettier that fails every check, as the real one fails files of another style.
		const dir = makeProject({
			prefix: "wp-lint-prettier-",
			files: {
				"wrangler.jsonc": '{ "name": "app" }\n',
				"package.json": JSON.stringify({ name: "app" }),
				"package-lock.json": "{}",
				"node_modules/.bin/prettier": "#!/bin/sh\necho '[warn] wrangler.jsonc'\nexit 1\n",
			},
		});
		chmodSync(path.join(dir, "node_modules/.bin/prettier"), 0o755);
		const lint = async () => {
			const run = await captureCli(["lint", "--json", "--cwd", dir], { cwd: dir });
			const report = JSON.parse(run.stdout) as {
				steps: { summary: string }[];
				findings: { code: string; message: string }[];
			};
			return { code: run.code, summary: report.steps[0]?.summary, findings: report.findings };
		};
		const unconfigured = await lint();
		expect(unconfigured.code).toBe(0);
		expect(unconfigured.summary).toContain(
			"format check skipped (no format:check script, no prettier or biome config)",
		);
		writeFileSync(path.join(dir, ".prettierrc"), "{}\n");
		const configured = await lint();
		expect(configured.code).toBe(1);
		expect(configured.findings.find((f) => f.code === "FORMAT_CHECK_FAILED")?.message).toMatch(
			/^prettier --check \. exited with 1 \(`npx prettier --write \.`\):\n\[warn\] wrangler\.jsonc/,
		);
	});

	it("should say which tool is missing and how to install it, not only `exited with 127`", async () => {
		const dir = makeProject({
			prefix: "wp-lint-missing-",
			files: {
				"wrangler.jsonc": '{ "name": "app" }\n',
				"package.json": JSON.stringify({ name: "app", scripts: { lint: "wp-no-such-linter ." } }),
				"package-lock.json": "{}",
			},
		});
		const run = await captureCli(["lint", "--json", "--cwd", dir], { cwd: dir });
		const report = JSON.parse(run.stdout) as { findings: { code: string; message: string }[] };
		const finding = report.findings.find((f) => f.code === "LINT_FAILED");
		expect(run.code).toBe(1);
		expect(finding?.message).toMatch(
			/^npm run lint exited with 127 \(`wp-no-such-linter` is not installed: .*Install the dependencies first \(`npm ci`\)/,
		);
	});
});
