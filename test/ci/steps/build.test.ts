import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { PackageManager } from "../../../ci/steps/_toolchain.ts";
import {
	buildVersion,
	hashBuildInputs,
	listBuildInputs,
	planBuild,
	readGeneratedEntry,
} from "../../../ci/steps/build.ts";

const npm: PackageManager = {
	name: "npm",
	version: undefined,
	source: "lockfile",
	lockfile: "package-lock.json",
};
const base = {
	settings: { budgetGzipKiB: 3072 },
	isOpenNext: false,
	framework: "worker" as const,
	scripts: {},
	hasMain: true,
	pm: npm,
	envPath: "",
};

describe("planBuild()", () => {
	it.each([
		[
			"build.command first, even in an OpenNext app",
			{
				settings: { budgetGzipKiB: 1, command: ["vite", "build"], output: "dist" },
				isOpenNext: true,
			},
			{ kind: "command", argv: ["vite", "build"], source: "build.command", output: "dist" },
		],
		[
			"OpenNext, never through the build script",
			{ isOpenNext: true, scripts: { build: "next build" } },
			{ kind: "opennext", argv: ["opennextjs-cloudflare", "build"] },
		],
		[
			"a Vite app's build script",
			{ framework: "vite" as const, scripts: { build: "vite build" } },
			{ kind: "command", argv: ["npm", "run", "build"], source: "build script" },
		],
		["a plain Worker: wrangler bundles main", { scripts: { build: "tsc" } }, { kind: "wrangler" }],
		[
			"the build script of any framework whose main only the build writes (SvelteKit)",
			{ scripts: { build: "vite build" }, generated: ".svelte-kit/cloudflare/_worker.js" },
			{
				kind: "command",
				argv: ["npm", "run", "build"],
				source: "build script, as .svelte-kit/cloudflare/_worker.js is built",
				output: ".svelte-kit/cloudflare/_worker.js",
			},
		],
		[
			"wrangler's own error without a build script",
			{ generated: "dist/index.js" },
			{ kind: "wrangler" },
		],
		["nothing without main", { hasMain: false }, { kind: "none" }],
		[
			"a Pages project's build script, into its pages_build_output_dir",
			{ hasMain: false, scripts: { build: "vite build" }, pagesOutput: "dist" },
			{
				kind: "command",
				argv: ["npm", "run", "build"],
				source: "build script of a Pages project",
				output: "dist",
			},
		],
		[
			"nothing for a Pages project without a build script (never wrangler's bundle)",
			{ hasMain: false, pagesOutput: "public" },
			{ kind: "none", reason: expect.stringContaining("Pages serves public as it is") },
		],
	])("should plan %s", (_, over, expected) => {
		expect(planBuild({ ...base, ...over })).toMatchObject(expected);
	});
});

const dirs: string[] = [];
afterEach(() => {
	for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function repo(files: Record<string, string>): string {
	const dir = mkdtempSync(path.join(tmpdir(), "wp-build-"));
	dirs.push(dir);
	for (const [name, text] of Object.entries(files)) {
		mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
		writeFileSync(path.join(dir, name), text);
	}
	const git = (...args: string[]) =>
		execFileSync("git", args, {
			cwd: dir,
			stdio: "pipe",
			env: {
				...process.env,
				GIT_AUTHOR_NAME: "t",
				GIT_AUTHOR_EMAIL: "t@t",
				GIT_COMMITTER_NAME: "t",
				GIT_COMMITTER_EMAIL: "t@t",
			},
		});
	git("init", "-q");
	git("add", "-A");
	git("commit", "-qm", "init");
	return dir;
}
const head = (dir: string) =>
	execFileSync("git", ["rev-parse", "HEAD"], { cwd: dir }).toString().trim();

describe("buildVersion()", () => {
	it("should stamp the clean sha, and <sha>-dirty once a tracked file changes or a new file appears", () => {
		const dir = repo({ "src/index.ts": "export default {};\n", ".gitignore": "dist/\n" });
		const sha = head(dir);
		expect(buildVersion(dir, {})).toBe(sha);
		mkdirSync(path.join(dir, "dist"));
		writeFileSync(path.join(dir, "dist/out.js"), "ignored output\n");
		expect(buildVersion(dir, {})).toBe(sha);
		writeFileSync(path.join(dir, "src/new.ts"), "export {};\n");
		expect(buildVersion(dir, {})).toBe(`${sha}-dirty`);
	});
	it("should say dev outside a repository", () => {
		const dir = mkdtempSync(path.join(tmpdir(), "wp-build-"));
		dirs.push(dir);
		expect(buildVersion(dir, {})).toBe("dev");
	});
});

describe("readGeneratedEntry()", () => {
	const project = (dir: string, wrangler: Record<string, unknown>) =>
		({ root: dir, wranglerPath: path.join(dir, "wrangler.jsonc"), wrangler }) as never;
	it.each([
		["a tracked main", { main: "src/index.ts" }, undefined],
		[
			"an ignored main, even once built",
			{ main: ".svelte-kit/cloudflare/_worker.js" },
			".svelte-kit/cloudflare/_worker.js",
		],
		["a main not written yet", { main: "build/server/index.js" }, "build/server/index.js"],
		["tracked assets, no main", { assets: { directory: "public" } }, undefined],
		["assets only a build writes", { assets: { directory: "./dist" } }, "dist"],
	])("should tell %s", (_, wrangler, expected) => {
		const dir = repo({
			"src/index.ts": "export default {};\n",
			"public/index.html": "<p>hi</p>\n",
			".gitignore": ".svelte-kit/\n",
		});
		mkdirSync(path.join(dir, ".svelte-kit/cloudflare"), { recursive: true });
		writeFileSync(path.join(dir, ".svelte-kit/cloudflare/_worker.js"), "export default {};\n");
		expect(readGeneratedEntry(project(dir, { name: "app", ...wrangler }))).toBe(expected);
	});

	// The Cloudflare Vite plugin resolves a `main` without a module extension through Vite
	// (vite-plugin-cloudflare maybeResolveMain): TanStack Start's is a package export.
	it("should not wait for a main that is a module id of a Vite plugin app, and wait for one elsewhere", () => {
		const main = { main: "@tanstack/react-start/server-entry" };
		const vite = repo({
			"package.json": JSON.stringify({ devDependencies: { "@cloudflare/vite-plugin": "^1.64.0" } }),
			"src/routes/index.tsx": "export {};\n",
		});
		expect(readGeneratedEntry(project(vite, { name: "app", ...main }))).toBeUndefined();
		// With a module extension it is a file again, one only the build writes.
		expect(readGeneratedEntry(project(vite, { name: "app", main: "dist/server/index.js" }))).toBe(
			"dist/server/index.js",
		);
		// Astro's adapter (13+) brings the plugin: installed, not a dependency of the app's own.
		const astro = repo({
			"package.json": JSON.stringify({ dependencies: { "@astrojs/cloudflare": "^14.3.0" } }),
			"node_modules/@cloudflare/vite-plugin/package.json": '{"name":"@cloudflare/vite-plugin"}',
			".gitignore": "node_modules\n",
		});
		const astroMain = { main: "@astrojs/cloudflare/entrypoints/server" };
		expect(readGeneratedEntry(project(astro, { name: "app", ...astroMain }))).toBeUndefined();
		// Wrangler alone reads every main as a path beside its config.
		const plain = repo({ "package.json": JSON.stringify({ devDependencies: { wrangler: "^4" } }) });
		expect(readGeneratedEntry(project(plain, { name: "app", ...main }))).toBe(main.main);
	});
});

describe("listBuildInputs() / hashBuildInputs()", () => {
	it("should key on every tracked file and every lockfile, never on build output", () => {
		const dir = repo({
			"src/index.ts": "a\n",
			"docs/notes.md": "b\n",
			".gitignore": "dist/\npnpm-lock.yaml\n",
			"pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
		});
		mkdirSync(path.join(dir, "dist"), { recursive: true });
		mkdirSync(path.join(dir, "out"), { recursive: true });
		writeFileSync(path.join(dir, "out/bundle.js"), "x");
		const inputs = listBuildInputs(dir, "out");
		expect(inputs).toEqual([".gitignore", "docs/notes.md", "pnpm-lock.yaml", "src/index.ts"]);
		const before = hashBuildInputs(dir, "v", "out");
		writeFileSync(path.join(dir, "out/bundle.js"), "changed output");
		expect(hashBuildInputs(dir, "v", "out")).toBe(before);
		writeFileSync(path.join(dir, "pnpm-lock.yaml"), "lockfileVersion: '9.1'\n");
		expect(hashBuildInputs(dir, "v", "out")).not.toBe(before);
	});

	it("should key a monorepo app on its workspace's lockfile and the workspace packages it links", () => {
		const dir = repo({
			"package.json": '{"workspaces":["apps/*","packages/*"]}',
			"package-lock.json": "{}",
			"apps/api/package.json": '{"dependencies":{"@m/shared":"*"}}',
			"apps/api/src/index.ts": "export default {};\n",
			"packages/shared/package.json": '{"name":"@m/shared"}',
			"packages/shared/index.ts": "export const a = 1;\n",
			"apps/web/index.ts": "unrelated\n",
		});
		mkdirSync(path.join(dir, "node_modules/@m"), { recursive: true });
		symlinkSync(path.join(dir, "packages/shared"), path.join(dir, "node_modules/@m/shared"));
		const app = path.join(dir, "apps/api");
		const before = hashBuildInputs(app, "v");
		writeFileSync(path.join(dir, "apps/web/index.ts"), "still unrelated\n");
		expect(hashBuildInputs(app, "v")).toBe(before);
		writeFileSync(path.join(dir, "packages/shared/index.ts"), "export const a = 2;\n");
		const shared = hashBuildInputs(app, "v");
		expect(shared).not.toBe(before);
		writeFileSync(path.join(dir, "package-lock.json"), '{"lockfileVersion":3}');
		expect(hashBuildInputs(app, "v")).not.toBe(shared);
	});
});

describe("build: wrangler's refusal of the Worker inside its assets (real wrangler)", () => {
	it("says to list _worker.js in a .assetsignore, as an Astro app's default layout needs", async () => {
		const { captureCli } = await import("../../support/cli.ts");
		const dir = mkdtempSync(path.join(tmpdir(), "wp-build-assets-"));
		dirs.push(dir);
		const files: Record<string, string> = {
			"package.json": JSON.stringify({ name: "app", private: true }),
			// What @astrojs/cloudflare 12 writes: the Worker in dist/_worker.js, the assets in dist.
			"build.mjs":
				"import { mkdirSync, writeFileSync } from 'node:fs';\nmkdirSync('dist/_worker.js', { recursive: true });\nwriteFileSync('dist/_worker.js/index.js', 'export default { fetch() { return new Response(\"ok\"); } };\\n');\nwriteFileSync('dist/index.html', '<p>hi</p>\\n');\n",
			"wrangler.jsonc": JSON.stringify({
				name: "app",
				main: "./dist/_worker.js/index.js",
				compatibility_date: "2026-06-01",
				assets: { directory: "./dist", binding: "ASSETS" },
			}),
			"workers-pipeline.jsonc": JSON.stringify({
				build: { command: ["node", "build.mjs"], output: "dist" },
			}),
		};
		for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
		const run = await captureCli(["build", "--json", "--cwd", dir], { cwd: dir, env: {} });
		const report = JSON.parse(run.stdout) as { findings: { code: string; message: string }[] };
		const bundle = report.findings.find((f) => f.code === "BUNDLE_FAILED");
		expect(bundle?.message, run.stdout).toMatch(/_worker\.js/);
		expect(bundle?.message).toMatch(
			/list it in a \.assetsignore there \(an Astro app: public\/\.assetsignore/,
		);
		expect(bundle?.message.startsWith("\n")).toBe(false);
		// With the .assetsignore the adapter's docs give, wrangler takes it.
		mkdirSync(path.join(dir, "public"));
		writeFileSync(path.join(dir, "dist/.assetsignore"), "_worker.js\n_routes.json\n");
		writeFileSync(
			path.join(dir, "build.mjs"),
			`${files["build.mjs"]}writeFileSync('dist/.assetsignore', '_worker.js\\n_routes.json\\n');\n`,
		);
		const again = await captureCli(["build", "--json", "--cwd", dir], { cwd: dir, env: {} });
		expect(again.code, again.stdout + again.stderr).toBe(0);
	}, 120_000);
});
