// The pure parts of `preview`: names, the PR's wrangler config, the PR comment.
import { describe, expect, it } from "vitest";
import type { WranglerConfig } from "../../../ci/config/schema.ts";
import {
	formatPreviewComment,
	type PreviewData,
	planPreviewConfig,
	planPreviewNames,
} from "../../../ci/steps/preview.ts";

const WRANGLER: WranglerConfig = {
	name: "app",
	main: "worker.js",
	env: {
		staging: {
			d1_databases: [
				{
					binding: "DB",
					database_name: "app-staging",
					database_id: "staging-id",
					migrations_dir: "db",
				},
				{ binding: "OTHER", database_name: "other", database_id: "other-id" },
			],
			vars: { APP_ENV: "staging" },
		},
	},
};

describe("planPreviewNames()", () => {
	it.each([
		{ worker: "app-staging", pr: 7, database: "app-staging-pr-7", alias: "pr-7" },
		{ worker: "App-Staging", pr: 120, database: "app-staging-pr-120", alias: "pr-120" },
	])("$worker #$pr → $database, $alias", ({ worker, pr, database, alias }) => {
		expect(planPreviewNames(worker, pr)).toEqual({ database, alias });
	});
});

describe("planPreviewConfig()", () => {
	it("points only the chosen binding at the PR database, keeping its other settings", () => {
		const planned = planPreviewConfig(WRANGLER, {
			env: "staging",
			binding: "DB",
			databaseName: "app-staging-pr-7",
			databaseId: "pr-id",
		});
		expect(planned.env?.staging?.d1_databases).toEqual([
			{
				binding: "DB",
				database_name: "app-staging-pr-7",
				database_id: "pr-id",
				migrations_dir: "db",
			},
			{ binding: "OTHER", database_name: "other", database_id: "other-id" },
		]);
		expect(planned.env?.staging?.vars).toEqual({ APP_ENV: "staging" });
		// The input is not changed.
		expect(WRANGLER.env?.staging?.d1_databases?.[0]?.database_id).toBe("staging-id");
	});

	const target = {
		env: "staging",
		binding: "DB",
		databaseName: "app-staging-pr-7",
		databaseId: "pr-id",
	};
	const PR_DB = { binding: "DB", database_name: "app-staging-pr-7", database_id: "pr-id" };

	it("gives wrangler preview a previews block: the environment's vars and version metadata, the PR's database", () => {
		const withMetadata = structuredClone(WRANGLER);
		(withMetadata.env?.staging as Record<string, unknown>).version_metadata = {
			binding: "CF_VERSION_METADATA",
		};
		expect(planPreviewConfig(withMetadata, target).env?.staging?.previews).toEqual({
			vars: { APP_ENV: "staging" },
			version_metadata: { binding: "CF_VERSION_METADATA" },
			d1_databases: [PR_DB],
		});
	});

	it.each([
		{ where: "the environment", env: { previews: { vars: { APP_ENV: "preview" } } }, top: {} },
		{
			where: "the top level (inherited)",
			env: {},
			top: { previews: { vars: { APP_ENV: "preview" } } },
		},
	])(
		"keeps the project's own previews block from $where, rebinding only the PR's database",
		({ env, top }) => {
			const config = structuredClone({ ...WRANGLER, ...top }) as WranglerConfig;
			Object.assign(config.env?.staging ?? {}, structuredClone(env));
			const own = (config.env?.staging?.previews ??
				(config as Record<string, unknown>).previews) as Record<string, unknown>;
			own.d1_databases = [
				{ binding: "DB", database_name: "shared-preview", database_id: "shared-id" },
				{ binding: "CACHE", database_name: "cache", database_id: "cache-id" },
			];
			expect(planPreviewConfig(config, target).env?.staging?.previews).toEqual({
				vars: { APP_ENV: "preview" },
				d1_databases: [
					{ binding: "CACHE", database_name: "cache", database_id: "cache-id" },
					PR_DB,
				],
			});
			// The project's block is not changed.
			expect(own.d1_databases).toHaveLength(2);
		},
	);

	it.each([
		{ env: "production", binding: "DB", message: /no env\.production/ },
		{ env: "staging", binding: "NOPE", message: /no binding "NOPE"/ },
	])("refuses $env/$binding", ({ env, binding, message }) => {
		expect(() =>
			planPreviewConfig(WRANGLER, { env, binding, databaseName: "x", databaseId: "y" }),
		).toThrow(message);
	});
});

describe("formatPreviewComment()", () => {
	const data: PreviewData = {
		environment: "staging",
		worker: "app-staging",
		pr: 7,
		alias: "pr-7",
		database: { name: "app-staging-pr-7", id: "pr-id", created: true },
		seeded: "seed.sql",
		migrate: { ok: true, summary: "applied 2 migration(s)" },
		deploymentId: "3f2c5f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f",
		deploymentToken: "0123456789ab-5b0e7f0c-8f8e-4f62-9b0c-2f4f3c0f6a11",
		url: "https://pr-7-app-staging.acme.workers.dev",
	};
	it("carries the URL, deployment, database and migration summary, with a marker to edit it in place", () => {
		expect(formatPreviewComment(data, true)).toMatchInlineSnapshot(`
			"<!-- workers-pipeline preview pr-7 -->
			### ✅ Preview of #7

			| | |
			|---|---|
			| URL | <https://pr-7-app-staging.acme.workers.dev> |
			| Deployment | \`3f2c5f5e-2b1a-4c3d-9e8f-0a1b2c3d4e5f\` |
			| Database | \`app-staging-pr-7\` (created) |
			| Migrations | applied 2 migration(s) |
			| Seed | seed.sql |
			| Health | — |
			"
		`);
	});
	it("says when the preview failed", () => {
		expect(formatPreviewComment({ ...data, url: null }, false)).toContain("### ❌ Preview of #7");
	});
});
