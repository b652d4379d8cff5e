// An app built by the Cloudflare Vite plugin is deployed as built, and only to the environment it
// was built for: real wrangler uploads to the loopback API what the build wrote, not a bundle of
// the source `main`, and a build for another environment stops the deploy before any request.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_FAILED, EXIT_USAGE } from "../../ci/cli/main.ts";
import { usesRedirectedConfig } from "../../ci/cloudflare/wrangler.ts";
import { loadProjectConfig } from "../../ci/config/load.ts";
import { runWranglerWithOutput, uploadArgs } from "../../ci/deploy/live.ts";
import { captureCli } from "../support/cli.ts";
import type { CloudflareApi } from "../support/cloudflare-api.ts";
import { startWranglerLoopback, type WranglerProject } from "../support/wrangler-process.ts";

const TOKEN = "loopback-token-vite-plugin-build-0123456789";
const ACCOUNT = "0123456789abcdef0123456789abcdef";
const PROD_DB = { uuid: "5d0c7e6a-1b2c-4d3e-8f90-a1b2c3d4e5f6", name: "vp-app-prod" };

// The build's stand-in writes what @cloudflare/vite-plugin's build writes (as a 1.64 build of a
// Hono app wrote them here): dist/<worker>/wrangler.json, one environment's config flattened, with
// topLevelName and targetEnvironment (CLOUDFLARE_ENV when it ran), and .wrangler/deploy/config.json
// pointing at it (workers-sdk packages/vite-plugin-cloudflare/src/deploy-config.ts).
const BUILD = `import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
const env = process.env.CLOUDFLARE_ENV || undefined;
const user = JSON.parse(readFileSync("wrangler.jsonc", "utf8"));
const chosen = env ? user.env[env] : user;
mkdirSync("dist/vp_app", { recursive: true });
writeFileSync("dist/vp_app/index.js", "export default { fetch() { return new Response('built for " + (env ?? "top") + "'); } };\\n");
writeFileSync("dist/vp_app/wrangler.json", JSON.stringify({
	configPath: process.cwd() + "/wrangler.jsonc",
	userConfigPath: process.cwd() + "/wrangler.jsonc",
	topLevelName: user.name,
	definedEnvironments: Object.keys(user.env ?? {}),
	...(env ? { targetEnvironment: env } : {}),
	name: env ? user.name + "-" + env : user.name,
	main: "index.js",
	compatibility_date: user.compatibility_date,
	rules: [{ type: "ESModule", globs: ["**/*.js"] }],
	no_bundle: true,
	d1_databases: (chosen.d1_databases ?? []).map((d) => ({ ...d, migrations_dir: "../../migrations" })),
}));
mkdirSync(".wrangler/deploy", { recursive: true });
writeFileSync(".wrangler/deploy/config.json", JSON.stringify({ configPath: "../../dist/vp_app/wrangler.json", auxiliaryWorkers: [] }));
`;

const FILES: Record<string, string> = {
	// A Vite app to the build step (its build script runs); nothing needs installing here.
	"package.json": JSON.stringify({
		name: "vp-app",
		private: true,
		type: "module",
		scripts: { build: "node build.mjs" },
		devDependencies: { vite: "^7.1.0", "@cloudflare/vite-plugin": "^1.13.0" },
	}),
	"build.mjs": BUILD,
	"src/index.js": "export default { fetch() { return new Response('the source, unbuilt'); } };\n",
	".gitignore": "dist\n.wrangler\nnode_modules\n",
	"wrangler.jsonc": JSON.stringify({
		name: "vp-app",
		main: "src/index.js",
		compatibility_date: "2025-07-15",
		d1_databases: [{ binding: "DB", database_name: "vp-app-dev", database_id: "dev-db-id" }],
		env: {
			production: {
				d1_databases: [{ binding: "DB", database_name: PROD_DB.name, database_id: PROD_DB.uuid }],
			},
		},
	}),
	"migrations/0001_init.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n",
};

let api: CloudflareApi;
let project: WranglerProject;
let outputDir: string;
beforeAll(async () => {
	({ api, project } = await startWranglerLoopback({
		token: TOKEN,
		accountId: ACCOUNT,
		databases: [PROD_DB],
		files: FILES,
		log: () => {},
	}));
	outputDir = mkdtempSync(path.join(tmpdir(), "wp-vite-plugin-out-"));
	const git = (...args: string[]) =>
		spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: project.dir });
	git("init", "-q");
	git("add", "-A");
	git("commit", "-qm", "app");
}, 60_000);
afterAll(async () => {
	await project?.dispose();
	await api?.close();
	if (outputDir) rmSync(outputDir, { recursive: true, force: true });
});

const cli = (argv: string[]) => captureCli(argv, { cwd: project.dir, env: project.env });

describe("a Cloudflare Vite plugin build", () => {
	it("built for no environment, deploy --env production stops before any request", async () => {
		const unknown = await cli(["build", "--env", "prod"]);
		expect(unknown.code).toBe(EXIT_USAGE);
		expect(unknown.stderr).toContain('Unknown environment "prod"');
		const build = await cli(["build", "--json"]);
		expect(build.code, build.stdout + build.stderr).toBe(0);
		const before = api.requests.length;
		const deploy = await cli(["deploy", "--env", "production", "--json"]);
		expect(deploy.code, deploy.stdout + deploy.stderr).toBe(EXIT_FAILED);
		const report = JSON.parse(deploy.stdout) as {
			findings: { code: string; message: string }[];
		};
		const mismatch = report.findings.find((f) => f.code === "BUILD_ENV_MISMATCH");
		expect(mismatch?.message).toContain(
			'is for the top-level Worker (no environment), not environment "production"',
		);
		expect(mismatch?.message).toContain("workers-pipeline build --env production");
		expect(api.requests.slice(before)).toEqual([]);
	}, 120_000);

	it("built with --env production, the upload is the build's own Worker, name and bindings", async () => {
		const build = await cli(["build", "--env", "production", "--json"]);
		expect(build.code, build.stdout + build.stderr).toBe(0);
		// What deploy's first upload runs (a Worker's first version: `wrangler deploy`).
		const { result } = await runWranglerWithOutput(
			{ cwd: project.dir, env: project.env, progress: () => {}, signal: undefined },
			{ project: loadProjectConfig({ cwd: project.dir }), env: "production" },
			{
				command: ["deploy"],
				args: uploadArgs({ tag: "t1", message: "m", vars: {} }),
				outputFile: path.join(outputDir, "out.ndjson"),
				signal: undefined,
			},
		);
		expect(result.exitCode, result.stdout + result.stderr).toBe(0);
		expect(result.stdout).toContain("Using redirected Wrangler configuration");
		const [version] = api.workers.versions("vp-app-production");
		const code = Object.values(version?.modules ?? {}).join("\n");
		expect(code).toContain("built for production");
		expect(code).not.toContain("the source, unbuilt");
		expect(version?.bindings).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ name: "DB", type: "d1", id: PROD_DB.uuid }),
			]),
		);
		expect(api.workers.versions("vp-app")).toEqual([]);
		// A config written for one upload (preview's, beside the app's) is passed as it is.
		const project2 = loadProjectConfig({ cwd: project.dir });
		expect(usesRedirectedConfig(project2)).toBe(true);
		expect(
			usesRedirectedConfig({
				...project2,
				wranglerPath: path.join(project.dir, ".wrangler-preview-pr-1.json"),
			}),
		).toBe(false);
	}, 120_000);

	it("CLOUDFLARE_ENV in the shell builds as --env does, and a build for another environment is never reused", async () => {
		const built = () =>
			(
				JSON.parse(readFileSync(path.join(project.dir, "dist/vp_app/wrangler.json"), "utf8")) as {
					targetEnvironment?: string;
				}
			).targetEnvironment;
		const cached = (run: { stdout: string }) =>
			(JSON.parse(run.stdout) as { steps: { data: { cached: boolean } }[] }).steps[0]?.data.cached;
		const top = await cli(["build", "--json"]);
		expect(cached(top)).toBe(false);
		expect(built()).toBeUndefined();
		const shell = await captureCli(["build", "--json"], {
			cwd: project.dir,
			env: { ...project.env, CLOUDFLARE_ENV: "production" },
		});
		expect(shell.code, shell.stdout + shell.stderr).toBe(0);
		expect(cached(shell)).toBe(false);
		expect(built()).toBe("production");
	}, 120_000);

	it("a build of an older commit: BUILD_MISSING says to build for the environment deployed", async () => {
		writeFileSync(path.join(project.dir, "src/index.js"), "export default {};\n");
		spawnSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "next"], {
			cwd: project.dir,
		});
		const before = api.requests.length;
		const deploy = await cli(["deploy", "--env", "production", "--json"]);
		expect(deploy.code).toBe(EXIT_FAILED);
		const report = JSON.parse(deploy.stdout) as { findings: { code: string; message: string }[] };
		expect(report.findings.find((f) => f.code === "BUILD_MISSING")?.message).toContain(
			"run `workers-pipeline build --env production` first",
		);
		expect(api.requests.slice(before)).toEqual([]);
	});
});
