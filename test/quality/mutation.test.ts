// `mutation`: Stryker for real on a small fixture (vitest runner), incremental by git changes,
// advisory unless a threshold is set; and the pure parts (file selection, score, survivors).
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
	formatSurvivor,
	judgeMutation,
	parseMutationReport,
	STRYKER_DEFAULT_MUTATE,
	selectMutateFiles,
} from "../../ci/steps/mutation.ts";
import { cli, copyFixture } from "./_support.ts";

describe("selectMutateFiles()", () => {
	it.each([
		[["src/a.ts", "test/a.test.ts", "README.md"], ["src/**/*.ts"], ["src/a.ts"]],
		[
			["ci/migrations/plan.ts", "ci/steps/lint.ts"],
			["ci/migrations/**/*.ts", "ci/steps/migrate.ts"],
			["ci/migrations/plan.ts"],
		],
		[["src/a.ts", "src/a.test.ts"], ["src/**/*.ts", "!src/**/*.test.ts"], ["src/a.ts"]],
		[["src/a.ts"], ["src/a.ts:1:0-9:0"], ["src/a.ts"]],
		[
			["src/a.ts", "src/a.spec.ts", "lib/__tests__/b.ts", "app/c.ts"],
			STRYKER_DEFAULT_MUTATE,
			["src/a.ts"],
		],
	])("%j by %j → %j", (changed, patterns, expected) => {
		expect(selectMutateFiles(changed, patterns)).toEqual(expected);
	});
});

describe("parseMutationReport()", () => {
	const mutant = (status: string, line: number, mutatorName = "BooleanLiteral") => ({
		mutatorName,
		replacement: "false",
		status,
		location: { start: { line, column: 2 } },
	});
	it("scores (killed + timeout) over valid mutants, as Stryker does, and lists survivors in order", () => {
		const summary = parseMutationReport(
			JSON.stringify({
				files: {
					"src/b.ts": { mutants: [mutant("Survived", 9), mutant("Killed", 1)] },
					"src/a.ts": {
						mutants: [
							mutant("Timeout", 3),
							mutant("NoCoverage", 4),
							mutant("CompileError", 5),
							mutant("Ignored", 6),
						],
					},
				},
			}),
		);
		expect(summary.score).toBe(50);
		expect(summary.counts).toEqual({
			Survived: 1,
			Killed: 1,
			Timeout: 1,
			NoCoverage: 1,
			CompileError: 1,
			Ignored: 1,
		});
		expect(summary.survivors.map((s) => `${s.file}:${s.line}:${s.status}`)).toEqual([
			"src/a.ts:4:NoCoverage",
			"src/b.ts:9:Survived",
		]);
	});
	it("has no score without valid mutants", () => {
		expect(
			parseMutationReport(
				JSON.stringify({ files: { "a.ts": { mutants: [mutant("Ignored", 1)] } } }),
			).score,
		).toBeNull();
	});
	it("says what to do about a survivor", () => {
		const finding = formatSurvivor({
			file: "src/a.ts",
			line: 3,
			column: 9,
			mutator: "ConditionalExpression",
			replacement: "false",
			status: "Survived",
		});
		expect(finding).toMatchObject({
			code: "MUTANT_SURVIVED",
			severity: "warning",
			file: "src/a.ts",
			line: 3,
		});
		expect(finding.message).toBe(
			"ConditionalExpression (→ `false`) survived every test: add or sharpen a test that fails with this change.",
		);
	});
});

describe("judgeMutation()", () => {
	const row = (line: number) => ({
		file: "a.ts",
		line,
		column: 1,
		mutator: "M",
		status: "Survived" as const,
	});
	const summary = (score: number | null, survivors = 1) => ({
		counts: { Killed: 3, Survived: survivors },
		score,
		survivors: Array.from({ length: survivors }, (_, i) => row(i + 1)),
		files: 1,
	});
	const options = {
		thresholdSource: "mutation.threshold",
		scope: "1 changed file(s)",
		htmlReport: "r.html",
	};
	it.each([
		[50, undefined, true, "advisory (no threshold)"],
		[50, null, true, "advisory (no threshold)"],
		[80, 80, true, "threshold 80%"],
		[79.99, 80, false, "threshold 80%"],
		[null, 80, true, "threshold 80%"],
	] as const)("score %s with threshold %s → ok %s", (score, threshold, ok, text) => {
		const judged = judgeMutation(summary(score), { ...options, threshold });
		expect(judged.ok).toBe(ok);
		expect(judged.summary).toContain(text);
		expect(judged.findings.some((f) => f.code === "MUTATION_SCORE_LOW")).toBe(!ok);
	});
	it("lists the first 50 survivors and points at the report for the rest", () => {
		const judged = judgeMutation(summary(10, 53), { ...options, threshold: undefined });
		expect(judged.findings).toHaveLength(51);
		expect(judged.findings.at(-1)?.message).toBe("3 more surviving mutant(s): see r.html.");
	});
});

const copies: (() => void)[] = [];
afterAll(() => {
	for (const dispose of copies) dispose();
});

/** The fixture as a git repository: `main` as committed, then a `feature` branch checked out. */
function repo(settings?: object): string {
	const copy = copyFixture("stryker-app");
	copies.push(copy.dispose);
	const git = (...args: string[]) =>
		execFileSync("git", ["-c", "user.email=t@example.com", "-c", "user.name=t", ...args], {
			cwd: copy.dir,
			stdio: "ignore",
		});
	writeFileSync(
		path.join(copy.dir, ".gitignore"),
		"node_modules\nreports\n.stryker-tmp\n.reports\n",
	);
	if (settings)
		writeFileSync(path.join(copy.dir, "workers-pipeline.jsonc"), JSON.stringify(settings));
	git("init", "-q", "-b", "main");
	git("add", "-A");
	git("commit", "-qm", "base");
	git("checkout", "-qb", "feature");
	return copy.dir;
}

describe("workers-pipeline mutation (real Stryker)", () => {
	it("mutates only files changed since main; advisory: survivors are warnings, the run passes", async () => {
		const dir = repo();
		appendFileSync(path.join(dir, "src", "label.ts"), "// changed on the branch\n");
		const run = await cli(["mutation", "--cwd", dir, "--json"]);
		expect(run.code, run.stdout + run.stderr).toBe(0);
		const step = run.json().steps[0];
		expect(step?.summary).toMatch(
			/^score 66\.67% \(4 killed, 0 timeout, 1 survived, 1 no coverage\) over 1 changed file\(s\) since main \(\w{7}\); advisory/,
		);
		expect(step?.data).toMatchObject({ files: 1, scope: ["src/label.ts"], survivors: 2 });
		const survivors = run.json().findings.filter((f) => f.code === "MUTANT_SURVIVED");
		expect(survivors.map((f) => f.file)).toEqual(["src/label.ts", "src/label.ts"]);
		expect(existsSync(path.join(dir, ".reports", "mutation", "mutation.html"))).toBe(true);
		expect(existsSync(path.join(dir, ".reports", "mutation", "mutation.json"))).toBe(true);
	});

	it("--all mutates every file of the config and fails under mutation.threshold", async () => {
		const dir = repo({ mutation: { threshold: 95 } });
		const run = await cli(["mutation", "--cwd", dir, "--all", "--json"]);
		expect(run.code).toBe(1);
		const report = run.json();
		expect(report.steps[0]?.data).toMatchObject({ files: 2, scope: "all", threshold: 95 });
		const low = report.findings.find((f) => f.code === "MUTATION_SCORE_LOW");
		expect(low?.message).toMatch(
			/^mutation score \d+(\.\d+)?% is under the threshold of 95% \(mutation\.threshold\)/,
		);
	});

	it("is skipped when no file under mutation changed", async () => {
		const dir = repo();
		writeFileSync(path.join(dir, "notes.md"), "not code\n");
		const run = await cli(["mutation", "--cwd", dir, "--json"]);
		expect(run.code).toBe(0);
		expect(run.json().steps[0]).toMatchObject({ skipped: true });
		expect(run.json().steps[0]?.summary).toMatch(/^no file under mutation changed since main/);
	});

	it("says how to get a base when there is none (exit 2)", async () => {
		const dir = repo();
		const run = await cli(["mutation", "--cwd", dir, "--since", "origin/nope"]);
		expect(run.code).toBe(2);
		expect(run.stderr).toContain("fetch-depth: 0");
	});

	it("is skipped, with what to add, without a Stryker config", async () => {
		const dir = repo();
		rmSync(path.join(dir, "stryker.config.json"));
		const run = await cli(["mutation", "--cwd", dir, "--json"]);
		expect(run.code).toBe(0);
		expect(run.json().findings[0]).toMatchObject({
			code: "MUTATION_NOT_CONFIGURED",
			severity: "warning",
		});
		expect(run.json().findings[0]?.message).toContain("@stryker-mutator/vitest-runner");
	});
});

describe("this repository's stryker.config.mjs", () => {
	it("mutates ci/migrations and the migrate/deploy steps, never tests, with one runner", async () => {
		const { readStrykerConfig } = await import("../../ci/steps/mutation.ts");
		const { REPO } = await import("./_support.ts");
		const config = (await readStrykerConfig(path.join(REPO, "stryker.config.mjs"))) as {
			mutate: string[];
			concurrency: number;
		};
		expect(config.concurrency).toBe(1);
		expect(
			selectMutateFiles(
				[
					"ci/migrations/plan.ts",
					"ci/steps/migrate.ts",
					"ci/steps/deploy.ts",
					"ci/steps/lint.ts",
					"test/ci/migrations/plan.test.ts",
				],
				config.mutate,
			),
		).toEqual(["ci/migrations/plan.ts", "ci/steps/migrate.ts", "ci/steps/deploy.ts"]);
	});
});
