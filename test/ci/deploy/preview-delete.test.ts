// deletePreview() (ci/deploy/preview.ts) with real wrangler against the loopback Previews API:
// idempotent when the Preview is gone, a real failure when the API refuses the delete.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProjectConfig } from "../../../ci/config/load.ts";
import { deletePreview } from "../../../ci/deploy/preview.ts";
import type { StepContext } from "../../../ci/steps/_step.ts";
import type { CloudflareApi } from "../../support/cloudflare-api.ts";
import { startWranglerLoopback, type WranglerProject } from "../../support/wrangler-process.ts";

const TOKEN = "loopback-token-preview-delete-0123456789";
const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";
const DB = { uuid: "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", name: "app-staging-pr-5" };
const WORKER = "app-staging";

describe("deletePreview() with real wrangler", () => {
	let api: CloudflareApi;
	let project: WranglerProject;
	let ctx: StepContext;
	const unknown: string[] = [];

	const target = (name: string) => ({
		project: loadProjectConfig({ cwd: project.dir }),
		env: "staging",
		worker: WORKER,
		name,
	});
	const createPreview = async (name: string) => {
		const run = await project.run(
			["preview", "--config", "wrangler.json", "--env", "staging", "--name", name],
			{ timeoutMs: 90_000 },
		);
		expect(run.exitCode, run.stdout + run.stderr).toBe(0);
	};

	beforeAll(async () => {
		const previews = {
			d1_databases: [{ binding: "DB", database_name: DB.name, database_id: DB.uuid }],
		};
		const config = {
			name: "app",
			main: "worker.js",
			compatibility_date: "2025-01-01",
			env: { staging: { d1_databases: previews.d1_databases, previews } },
		};
		({ api, project } = await startWranglerLoopback({
			token: TOKEN,
			accountId: ACCOUNT_ID,
			databases: [DB],
			log: (line) => unknown.push(line),
			files: {
				"wrangler.json": JSON.stringify(config),
				"worker.js": "export default { fetch: () => new Response('ok') };\n",
			},
		}));
		ctx = { cwd: project.dir, env: { ...project.env }, progress: () => {} };
	});

	afterAll(async () => {
		await project?.dispose();
		await api?.close();
	});

	const deletes = () => api.requests.filter((r) => r.method === "DELETE").length;

	it("is success without a request to delete when the Worker has no such Preview", async () => {
		expect(await deletePreview(ctx, target("pr-5"))).toEqual({ ok: true, deleted: false });
		expect(deletes()).toBe(0);
		expect(unknown).toEqual([]);
	});

	it("deletes an existing Preview with all its deployments, then finds nothing to delete", async () => {
		await createPreview("pr-5");
		expect(await deletePreview(ctx, target("pr-5"))).toEqual({ ok: true, deleted: true });
		expect(api.previews.preview(WORKER, "pr-5")).toBeUndefined();
		const before = deletes();
		expect(await deletePreview(ctx, target("pr-5"))).toEqual({ ok: true, deleted: false });
		expect(deletes()).toBe(before);
	});

	it("fails with wrangler's output when the API refuses the delete, and the Preview stays", async () => {
		await createPreview("pr-6");
		api.setFaultHook((r) =>
			r.method === "DELETE" && r.path.endsWith("/previews/pr-6")
				? { kind: "status", status: 403, d1Code: 10000, message: "Authentication error" }
				: undefined,
		);
		try {
			const result = await deletePreview(ctx, target("pr-6"));
			expect(result.ok).toBe(false);
			expect(!result.ok && result.message).toMatch(
				/wrangler preview delete failed \(exit 1\)[\s\S]*Authentication error/,
			);
			expect(api.previews.preview(WORKER, "pr-6")).toBeDefined();
		} finally {
			api.setFaultHook(undefined);
		}
	});

	it("is success when the Preview went while wrangler was deleting it (its answer lost)", async () => {
		let lost = false;
		api.setFaultHook((r) => {
			if (lost || r.method !== "DELETE" || !r.path.endsWith("/previews/pr-6")) return undefined;
			lost = true;
			return { kind: "reset-after" };
		});
		try {
			expect(await deletePreview(ctx, target("pr-6"))).toEqual({ ok: true, deleted: false });
			expect(api.previews.preview(WORKER, "pr-6")).toBeUndefined();
		} finally {
			api.setFaultHook(undefined);
		}
	});
});
