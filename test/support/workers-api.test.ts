import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CloudflareApi } from "./cloudflare-api.ts";
import { startWranglerLoopback, type WranglerProject } from "./wrangler-process.ts";

const TOKEN = "loopback-token-0123456789abcdef0123456789ab";
const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";
const DB = { uuid: "9b1f3a52-7c4d-4e8f-a1b2-c3d4e5f60718", name: "app-db-staging" };
const APP = "pipeline-app";
// wrangler names an environment's Worker `<name>-<env>` (no legacy_env override here).
const SCRIPT = `${APP}-staging`;
const SECRET_VALUE = "s3cr3t-value-never-logged";

// Shaped like our example app after `opennextjs-cloudflare build` (main and assets under
// .open-next), plus the three markers wrangler's isOpenNextProject() looks for, so the tests also
// prove that `--config` keeps wrangler from handing off to `opennextjs-cloudflare deploy`.
const FIXTURE: Record<string, string> = {
	".open-next/worker.js":
		'export default {\n\tasync fetch(request, env) {\n\t\tconst url = new URL(request.url);\n\t\tif (url.pathname === "/health") return Response.json({ ok: true });\n\t\treturn env.ASSETS.fetch(request);\n\t},\n};\n',
	".open-next/assets/index.html": "<!doctype html><title>fixture</title><p>hello</p>\n",
	".open-next/assets/_next/static/app.js": 'console.log("fixture");\n',
	".open-next/assets/favicon.txt": "not really an icon\n",
	"next.config.mjs": "export default {};\n",
	"open-next.config.ts": "export default {};\n",
	"node_modules/@opennextjs/cloudflare/package.json":
		'{ "name": "@opennextjs/cloudflare", "version": "1.20.13" }\n',
	"wrangler.jsonc": `${JSON.stringify(
		{
			name: APP,
			main: ".open-next/worker.js",
			compatibility_date: "2025-01-01",
			compatibility_flags: ["nodejs_compat"],
			assets: { directory: ".open-next/assets", binding: "ASSETS" },
			env: {
				staging: {
					vars: { APP_ENV: "staging" },
					d1_databases: [
						{
							binding: "DB",
							database_name: DB.name,
							database_id: DB.uuid,
							migrations_dir: "migrations",
						},
					],
				},
			},
		},
		null,
		"\t",
	)}\n`,
};

interface OutputEntry {
	type: string;
	[key: string]: unknown;
}

const readEntries = async (file: string): Promise<OutputEntry[]> =>
	(await readFile(file, "utf8"))
		.split("\n")
		.filter((line) => line.trim() !== "")
		.map((line) => JSON.parse(line) as OutputEntry);

describe("Workers endpoints with real wrangler", () => {
	let api: CloudflareApi;
	let project: WranglerProject;
	let outputFile: string;
	const unknown: string[] = [];

	// wrangler against the fixture's staging Worker; `--config` also keeps it from handing off.
	const staging = (args: string[], options?: { timeoutMs?: number }) =>
		project.run([...args, "--config", "wrangler.jsonc", "--env", "staging"], options);
	const deploy = async (tag: string, message: string, extra: string[] = []) => {
		await rm(outputFile, { force: true });
		const run = await staging(["deploy", "--tag", tag, "--message", message, ...extra], {
			timeoutMs: 90_000,
		});
		return run;
	};

	beforeAll(async () => {
		({ api, project } = await startWranglerLoopback({
			token: TOKEN,
			accountId: ACCOUNT_ID,
			databases: [DB],
			log: (line) => unknown.push(line),
			files: FIXTURE,
		}));
		outputFile = join(project.home, "wrangler-output.ndjson");
		project.env.WRANGLER_OUTPUT_FILE_PATH = outputFile;
	});

	afterAll(async () => {
		await project?.dispose();
		await api?.close();
	});

	let firstVersion = "";
	let secondVersion = "";

	it("should deploy a tagged version, make it live and report it in the output file", async () => {
		const run = await deploy("sha-1111111", "first deploy");
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(run.stdout).not.toContain("OpenNext project detected");
		expect(unknown).toEqual([]);

		const versions = api.workers.versions(SCRIPT);
		expect(versions).toHaveLength(1);
		firstVersion = versions[0]?.id ?? "";
		expect(firstVersion).toMatch(/^[0-9a-f-]{36}$/);
		expect(versions[0]).toMatchObject({
			tag: "sha-1111111",
			message: "first deploy",
			annotations: { "workers/tag": "sha-1111111", "workers/message": "first deploy" },
			via: "upload",
		});
		expect(versions[0]?.bindings).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ name: "DB", type: "d1", id: DB.uuid }),
				expect.objectContaining({ name: "APP_ENV", type: "plain_text", text: "staging" }),
			]),
		);
		expect(Object.keys(versions[0]?.assets ?? {}).sort()).toEqual([
			"/_next/static/app.js",
			"/favicon.txt",
			"/index.html",
		]);
		const indexHash = versions[0]?.assets["/index.html"] ?? "";
		expect(api.workers.asset(indexHash)?.content.toString()).toBe(
			FIXTURE[".open-next/assets/index.html"],
		);
		expect(api.workers.liveVersion(SCRIPT)).toBe(firstVersion);
		expect(run.stdout).toContain(`Current Version ID: ${firstVersion}`);
		expect(run.stdout).toContain(api.workers.workersDevUrl(SCRIPT));

		const entries = await readEntries(outputFile);
		const deployEntry = entries.find((e) => e.type === "deploy");
		expect(deployEntry).toMatchObject({
			type: "deploy",
			version: 1,
			worker_name: SCRIPT,
			version_id: firstVersion,
			targets: [`https://${SCRIPT}.loopback.workers.dev`],
			wrangler_environment: "staging",
		});
	});

	it("should make a second deploy live through versions + deployments", async () => {
		const run = await deploy("sha-2222222", "second deploy");
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(unknown).toEqual([]);
		const versions = api.workers.versions(SCRIPT);
		expect(versions).toHaveLength(2);
		secondVersion = versions[1]?.id ?? "";
		expect(versions[1]).toMatchObject({ tag: "sha-2222222", via: "version" });
		expect(api.workers.liveVersion(SCRIPT)).toBe(secondVersion);
		expect(api.workers.deployments(SCRIPT)[0]?.annotations["workers/message"]).toBe(
			"second deploy",
		);
		// Unchanged assets are not uploaded again.
		expect(run.stdout).toContain("No updated asset files to upload");
		const deployEntry = (await readEntries(outputFile)).find((e) => e.type === "deploy");
		expect(deployEntry?.version_id).toBe(secondVersion);
	});

	it("should list versions and report the live one with deployments status", async () => {
		const list = await staging(["versions", "list", "--json"]);
		expect(list.exitCode, list.stderr).toBe(0);
		const versions = JSON.parse(list.stdout) as {
			id: string;
			annotations: Record<string, string>;
		}[];
		expect(versions.map((v) => v.id)).toEqual([firstVersion, secondVersion]);
		expect(versions[1]?.annotations["workers/tag"]).toBe("sha-2222222");

		const status = await staging(["deployments", "status", "--json"]);
		expect(status.exitCode, status.stderr).toBe(0);
		const latest = JSON.parse(status.stdout) as {
			versions: { version_id: string; percentage: number }[];
		};
		expect(latest.versions).toEqual([{ version_id: secondVersion, percentage: 100 }]);
	});

	it("should roll back to the first version", async () => {
		const run = await staging(["rollback", firstVersion, "--message", "health check failed", "-y"]);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(unknown).toEqual([]);
		expect(run.stdout).toContain(`Current Version ID: ${firstVersion}`);
		expect(api.workers.liveVersion(SCRIPT)).toBe(firstVersion);
		expect(api.workers.deployments(SCRIPT)[0]).toMatchObject({
			versions: [{ version_id: firstVersion, percentage: 100 }],
			annotations: { "workers/message": "health check failed", "workers/triggered_by": "rollback" },
		});
		// rollback writes no deploy entry: `Current Version ID:` is what there is to parse.
		const status = await staging(["deployments", "status", "--json"]);
		expect(JSON.parse(status.stdout).versions[0].version_id).toBe(firstVersion);
	});

	it("should fail a deploy on demand and leave the live version alone", async () => {
		api.workers.failNextDeploy({ script: SCRIPT });
		const run = await deploy("sha-3333333", "doomed deploy");
		expect(run.exitCode).not.toBe(0);
		expect(run.stdout + run.stderr).toContain("simulated startup failure");
		expect(api.workers.versions(SCRIPT)).toHaveLength(2);
		expect(api.workers.liveVersion(SCRIPT)).toBe(firstVersion);
	});

	it("should store --secrets-file secrets without logging their values", async () => {
		const secretsFile = join(project.dir, ".secrets.env");
		await writeFile(secretsFile, `API_KEY=${SECRET_VALUE}\nOTHER_SECRET=also-secret\n`);
		const run = await deploy("sha-4444444", "with secrets", ["--secrets-file", secretsFile]);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(unknown).toEqual([]);
		expect(api.workers.secrets(SCRIPT)).toEqual(["API_KEY", "OTHER_SECRET"]);
		expect(api.workers.secretValue(SCRIPT, "API_KEY")).toBe(SECRET_VALUE);
		const live = api.workers.liveVersion(SCRIPT);
		expect(live).toBe(api.workers.versions(SCRIPT).at(-1)?.id);
		const logged = api.requests.map((r) => r.body ?? "").join("\n");
		expect(logged).toContain("API_KEY");
		expect(logged).toContain("[REDACTED]");
		expect(logged).not.toContain(SECRET_VALUE);
		expect(logged).not.toContain("also-secret");
	});

	it("should confirm and force a rollback across changed secrets", async () => {
		const run = await staging(["rollback", secondVersion, "-y"]);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(run.stdout).toContain("have changed since version");
		expect(run.stdout).toContain("API_KEY");
		expect(run.stdout).toContain(`Current Version ID: ${secondVersion}`);
		expect(api.workers.liveVersion(SCRIPT)).toBe(secondVersion);
		const forced = api.requests.filter(
			(r) => r.path.endsWith("/deployments") && r.method === "POST",
		);
		expect(forced.at(-2)?.status).toBe(400);
		expect(forced.at(-1)?.query).toBe("?force=true");
		// Secrets belong to versions: the rolled-back-to version has none.
		expect(api.workers.secretValue(SCRIPT, "API_KEY", secondVersion)).toBeUndefined();
	});

	let aliased = "";

	it("should upload a version with a preview alias that gets no traffic", async () => {
		const live = api.workers.liveVersion(SCRIPT);
		await rm(outputFile, { force: true });
		const run = await staging(
			[
				"versions",
				"upload",
				"--tag",
				"sha-5555555",
				"--message",
				"preview of #5",
				"--preview-alias",
				"pr-5",
			],
			{ timeoutMs: 90_000 },
		);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(unknown).toEqual([]);
		aliased = api.workers.versions(SCRIPT).at(-1)?.id ?? "";
		expect(api.workers.versions(SCRIPT).at(-1)).toMatchObject({
			via: "version",
			annotations: { "workers/alias": "pr-5", "workers/tag": "sha-5555555" },
		});
		expect(api.workers.aliasVersion(SCRIPT, "pr-5")).toBe(aliased);
		expect(api.workers.liveVersion(SCRIPT)).toBe(live);
		// Preview URLs follow the workers.dev route when the config does not set preview_urls.
		const upload = (await readEntries(outputFile)).find((e) => e.type === "version-upload");
		expect(upload).toMatchObject({
			version_id: aliased,
			preview_url: `https://${aliased.slice(0, 8)}-${SCRIPT}.loopback.workers.dev`,
			preview_alias_url: `https://pr-5-${SCRIPT}.loopback.workers.dev`,
		});
	});

	it("should split traffic between two versions without a prompt, then move it all", async () => {
		const live = api.workers.liveVersion(SCRIPT) ?? "";
		const split = await staging([
			"versions",
			"deploy",
			`${aliased}@10%`,
			`${live}@90%`,
			"--message",
			"canary",
			"--yes",
		]);
		expect(split.exitCode, split.stdout + split.stderr).toBe(0);
		expect(unknown).toEqual([]);
		expect(api.workers.deployments(SCRIPT)[0]).toMatchObject({
			versions: [
				{ version_id: aliased, percentage: 10 },
				{ version_id: live, percentage: 90 },
			],
			annotations: { "workers/message": "canary", "workers/triggered_by": "deployment" },
		});
		const status = await staging(["deployments", "status", "--json"]);
		expect(JSON.parse(status.stdout).versions).toHaveLength(2);
		const all = await staging(["versions", "deploy", `${aliased}@100%`, "--yes"]);
		expect(all.exitCode, all.stdout + all.stderr).toBe(0);
		expect(api.workers.liveVersion(SCRIPT)).toBe(aliased);
	});

	it("should refuse a split that does not add up to 100 %", async () => {
		const live = api.workers.liveVersion(SCRIPT) ?? "";
		const run = await staging(["versions", "deploy", `${live}@60%`, `${aliased}@60%`, "--yes"]);
		expect(run.exitCode).not.toBe(0);
		expect(api.workers.liveVersion(SCRIPT)).toBe(live);
	});
});
