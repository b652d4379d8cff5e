// The loopback's Worker Previews routes (cloudflare-api/previews.ts) driven by real wrangler 4.164:
// `wrangler preview` creates a named Preview with its own D1 binding from the config's `previews`
// block, `wrangler preview delete -y` removes it, and a second delete fails as the real API does.
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CloudflareApi } from "./cloudflare-api.ts";
import { startWranglerLoopback, type WranglerProject } from "./wrangler-process.ts";

const TOKEN = "loopback-token-0123456789abcdef0123456789ab";
const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";
const STAGING_DB = { uuid: "9b1f3a52-7c4d-4e8f-a1b2-c3d4e5f60718", name: "app-db-staging" };
const PR_DB = { uuid: "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", name: "pipeline-app-staging-pr-3" };
const APP = "pipeline-app";
const SCRIPT = `${APP}-staging`;
const SECRET_VALUE = "preview-secret-never-logged";

const config = (previews: Record<string, unknown> | undefined) => ({
	name: APP,
	main: "worker.js",
	compatibility_date: "2025-01-01",
	env: {
		staging: {
			vars: { APP_ENV: "staging" },
			d1_databases: [
				{ binding: "DB", database_name: STAGING_DB.name, database_id: STAGING_DB.uuid },
			],
			...(previews ? { previews } : {}),
		},
	},
});

const PREVIEWS = {
	vars: { APP_ENV: "preview" },
	d1_databases: [{ binding: "DB", database_name: PR_DB.name, database_id: PR_DB.uuid }],
	version_metadata: { binding: "CF_VERSION_METADATA" },
};

describe("Worker Previews endpoints with real wrangler", () => {
	let api: CloudflareApi;
	let project: WranglerProject;
	let outputFile: string;
	const unknown: string[] = [];

	const writeConfig = (previews: Record<string, unknown> | undefined) =>
		writeFile(join(project.dir, "wrangler.json"), JSON.stringify(config(previews), null, "\t"));

	const preview = async (extra: string[] = []) => {
		await rm(outputFile, { force: true });
		return project.run(
			["preview", "--config", "wrangler.json", "--env", "staging", "--name", "pr-3", ...extra],
			{ timeoutMs: 90_000 },
		);
	};
	const remove = () =>
		project.run(
			[
				"preview",
				"delete",
				"--config",
				"wrangler.json",
				"--env",
				"staging",
				"--name",
				"pr-3",
				"-y",
			],
			{ timeoutMs: 60_000 },
		);

	beforeAll(async () => {
		({ api, project } = await startWranglerLoopback({
			token: TOKEN,
			accountId: ACCOUNT_ID,
			databases: [STAGING_DB, PR_DB],
			log: (line) => unknown.push(line),
			files: {
				"worker.js": "export default { fetch: () => new Response('ok') };\n",
				".secrets.json": JSON.stringify({ API_KEY: SECRET_VALUE }),
			},
		}));
		outputFile = join(project.home, "wrangler-output.ndjson");
		project.env.WRANGLER_OUTPUT_FILE_PATH = outputFile;
	});

	afterAll(async () => {
		await project?.dispose();
		await api?.close();
	});

	it("should refuse a config without a previews block, before creating anything", async () => {
		await writeConfig(undefined);
		const run = await preview();
		expect(run.exitCode).toBe(1);
		expect(run.stdout + run.stderr).toContain("missing a `previews` block");
		expect(api.previews.previews(SCRIPT)).toEqual([]);
		expect(unknown).toEqual([]);
	});

	let first = "";

	it("should create the Worker and a named Preview bound to the PR's database, without a prompt", async () => {
		await writeConfig(PREVIEWS);
		const run = await preview([
			"--tag",
			"sha-3333333",
			"--message",
			"preview of #3",
			"--var",
			"EXPECTED:0002_x.sql",
			"--secrets-file",
			".secrets.json",
			"--ignore-base-config",
		]);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(unknown).toEqual([]);
		const [created] = api.previews.previews(SCRIPT);
		expect(created).toMatchObject({ name: "pr-3", slug: "pr-3", ignoreBaseConfig: true });
		const deployment = created?.deployments.at(-1);
		first = deployment?.id ?? "";
		expect(deployment?.env).toMatchObject({
			DB: { type: "d1", database_id: PR_DB.uuid },
			APP_ENV: { type: "plain_text", text: "preview" },
			EXPECTED: { type: "plain_text", text: "0002_x.sql" },
			CF_VERSION_METADATA: { type: "version_metadata" },
			API_KEY: { type: "secret_text" },
		});
		expect(deployment?.annotations).toMatchObject({
			"workers/tag": "sha-3333333",
			"workers/message": "preview of #3",
		});
		expect(api.previews.secretValue(SCRIPT, "API_KEY", first)).toBe(SECRET_VALUE);
		expect(api.requests.some((r) => r.body?.includes(SECRET_VALUE))).toBe(false);
		// The output file names the Preview, its URL and the deployment.
		const entries = (await readFile(outputFile, "utf8"))
			.split("\n")
			.filter((l) => l.trim())
			.map((l) => JSON.parse(l) as Record<string, unknown>);
		expect(entries.find((e) => e.type === "preview")).toMatchObject({
			worker_name: SCRIPT,
			preview_name: "pr-3",
			preview_slug: "pr-3",
			preview_urls: [`https://pr-3-${SCRIPT}.loopback.workers.dev`],
			deployment_id: first,
		});
	});

	it("should add a deployment to the existing Preview on the next push, keeping its secret", async () => {
		const run = await preview(["--tag", "sha-4444444"]);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		const previews = api.previews.previews(SCRIPT);
		expect(previews).toHaveLength(1);
		const deployments = previews[0]?.deployments ?? [];
		expect(deployments.map((d) => d.id)).toEqual([first, expect.any(String)]);
		const latest = deployments.at(-1)?.id ?? "";
		expect(api.previews.secretValue(SCRIPT, "API_KEY", latest)).toBe(SECRET_VALUE);
	});

	it("should refuse a deployment binding a database that does not exist", async () => {
		await writeConfig({
			...PREVIEWS,
			d1_databases: [
				{
					binding: "DB",
					database_name: "gone",
					database_id: "00000000-0000-4000-8000-00000000dead",
				},
			],
		});
		const run = await preview();
		expect(run.exitCode).toBe(1);
		expect(run.stdout + run.stderr).toContain("must have a valid `database_id`");
		await writeConfig(PREVIEWS);
	});

	it("should delete the Preview without a prompt; deleting it again fails as the API does", async () => {
		const run = await remove();
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
		expect(run.stdout).toContain('Preview "pr-3" deleted successfully');
		expect(api.previews.previews(SCRIPT)).toEqual([]);
		expect(api.previews.deleted).toEqual([`${SCRIPT}/pr-3`]);
		const again = await remove();
		expect(again.exitCode).toBe(1);
		expect(again.stdout + again.stderr).toContain("Preview pr-3 not found [code: 10025]");
		const last = api.requests.at(-1);
		expect(last).toMatchObject({ method: "DELETE", status: 404 });
		expect(unknown).toEqual([]);
	});
});
