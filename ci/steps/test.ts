import path from "node:path";
import { stripVTControlCharacters } from "node:util";
import type { ProjectConfig } from "../config/schema.ts";
import { runTool } from "../process.ts";
import { hashProjectFiles, readCacheEntry, writeCacheEntry } from "./_cache.ts";
import { defineStep, makeStepResult } from "./_step.ts";
import {
	explainScriptFailure,
	type PackageManager,
	readPackageJson,
	readPackageManager,
	scriptCommand,
} from "./_toolchain.ts";

export interface TestArgs {
	project: ProjectConfig;
	/** When set, a passing run is remembered by the hash of every project file and reused. */
	cacheDir?: string;
	/** False: run even if a passing result is cached (the new result is still kept). */
	reuse?: boolean;
}

interface CachedTestRun {
	inputsHash: string;
	summary: string;
	counts: { passed?: number; failed?: number };
	at: string;
}

/** Pulls "N passed" / "N failed" out of common runners' closing lines (vitest, jest, node:test). */
export function parseTestCounts(output: string): { passed?: number; failed?: number } {
	const text = stripVTControlCharacters(output);
	const vitest = /Tests\s+(?:(\d+) failed\s*\|\s*)?(\d+) passed/.exec(text);
	if (vitest) return { failed: Number(vitest[1] ?? 0), passed: Number(vitest[2]) };
	// node:test's TAP reporter (`# pass 3`) and its spec reporter (`ℹ pass 3`).
	const nodeTest = /[#ℹ] pass (\d+)[\s\S]*?[#ℹ] fail (\d+)/.exec(text);
	if (nodeTest) return { passed: Number(nodeTest[1]), failed: Number(nodeTest[2]) };
	return {};
}

// `npm init`'s placeholder script: a project with it has no tests yet.
const PLACEHOLDER_TEST = /no test specified/;

/**
 * The test command: test.command when the project set one; the default (`npm test`) means the
 * project's `test` script, run with its own package manager, or nothing when it has none. Pure.
 */
export function planTestCommand({
	command,
	scripts,
	pm,
	envPath,
}: {
	command: readonly string[];
	scripts: Record<string, string> | undefined;
	pm: PackageManager;
	envPath: string | undefined;
}): { argv: [string, ...string[]] } | { skip: string } {
	const isDefault = command.length === 2 && command[0] === "npm" && command[1] === "test";
	if (!isDefault) return { argv: command as [string, ...string[]] };
	const script = scripts?.test;
	if (!script) return { skip: "no test script in package.json (set test.command to run tests)" };
	if (PLACEHOLDER_TEST.test(script))
		return { skip: "the test script is npm init's placeholder (no tests yet)" };
	return { argv: scriptCommand(pm, "test", envPath) };
}

/** What a test report carries: the runner's counts when it printed them; `cached` when not re-run. */
export type TestData = { passed?: number; failed?: number; cached?: boolean };

/** Runs the project's unit tests: settings.test.command, default the `test` script. */
export const testStep = defineStep<TestArgs, TestData>({
	name: "test",
	async run(ctx, { project, cacheDir, reuse = true }) {
		const started = performance.now();
		const pm = readPackageManager(project.root);
		const planned = planTestCommand({
			command: project.settings.test.command,
			scripts: readPackageJson(project.root)?.scripts,
			pm,
			envPath: ctx.env.PATH,
		});
		if ("skip" in planned) {
			return makeStepResult("test", started, {
				ok: true,
				skipped: true,
				summary: `skipped: ${planned.skip}`,
				findings: [],
			});
		}
		const [file, ...args] = planned.argv;
		const inputsHash = cacheDir
			? hashProjectFiles(project.root, JSON.stringify([file, ...args, process.version]))
			: undefined;
		const cached = cacheDir && reuse ? readCacheEntry<CachedTestRun>(cacheDir, "test") : undefined;
		if (inputsHash && cached?.inputsHash === inputsHash) {
			return makeStepResult("test", started, {
				ok: true,
				summary: `${cached.summary} (cached: no file changed since the passing run at ${cached.at})`,
				findings: [],
				data: { ...cached.counts, cached: true },
			});
		}
		ctx.progress(`running ${[file, ...args].join(" ")}`);
		const resolved = file.includes("/") ? path.resolve(project.root, file) : file;
		const result = await runTool({
			file: resolved,
			args,
			cwd: project.root,
			env: ctx.env,
			signal: ctx.signal,
		});
		const counts = parseTestCounts(result.stdout + result.stderr);
		const countText =
			counts.passed !== undefined ? `${counts.passed} passed, ${counts.failed ?? 0} failed` : "";
		const summary = `${[file, ...args].join(" ")}: ${result.failed ? `failed (exit ${result.exitCode ?? result.signal})` : "ok"}${countText ? ` (${countText})` : ""}`;
		if (cacheDir && inputsHash && !result.failed) {
			const entry: CachedTestRun = { inputsHash, summary, counts, at: new Date().toISOString() };
			writeCacheEntry(cacheDir, "test", entry);
		}
		const why = result.failed
			? explainScriptFailure({ argv: planned.argv, output: result.stdout + result.stderr, pm })
			: undefined;
		return makeStepResult("test", started, {
			ok: !result.failed,
			summary,
			findings: result.failed
				? [
						{
							code: "TESTS_FAILED",
							severity: "error",
							message: `${[file, ...args].join(" ")} exited with ${result.timedOut ? "a timeout" : (result.exitCode ?? result.signal)}${why ? ` (${why})` : ""}:\n${(result.stdout + result.stderr).trimEnd().split("\n").slice(-40).join("\n")}`,
						},
					]
				: [],
			data: counts,
		});
	},
});
