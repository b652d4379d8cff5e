// `preview --pr N`: a pull request's own D1 database (created on first use, migrated by the
// migrate step with all its guarantees, seeded once), a Worker Preview named pr-N
// (`wrangler preview`) bound to that database, its Preview URL health-checked, and a PR comment
// the shim posts. `--cleanup` deletes the Preview and the database when the PR closes.

import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Cloudflare from "cloudflare";
import { refusePagesProject, resolveEnvironment } from "../config/load.ts";
import type { ProjectConfig, WranglerConfig, WranglerD1Binding } from "../config/schema.ts";
import { DEPLOYMENT_VAR } from "../constants.ts";
import { type HealthObservation, waitForHealth } from "../deploy/health-check.ts";
import { createPreview, deletePreview } from "../deploy/preview.ts";
import { readDeploySecrets } from "../deploy/secrets.ts";
import { UserError } from "../errors.ts";
import { describeOwner, readGitSha } from "../git.ts";
import { parseCatalog, readCatalog } from "../migrations/catalog.ts";
import { type Finding, hasErrors } from "../report/model.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import { BUILD_STAMP, OTHER_BUILD_STAMP, readBuildStamp } from "./build.ts";
import { EXPECTED_HEAD_VAR, planHealthPolicy } from "./deploy.ts";
import { migrateStep } from "./migrate.ts";

export interface PreviewArgs {
	project: ProjectConfig;
	/** The wrangler environment the preview is based on (its Worker, vars and bindings). */
	env: string;
	pr: number;
	cleanup?: boolean;
	binding?: string;
	/** SQL run once on a newly created PR database (default: seed.sql when the project has one). */
	seedFile?: string;
	/** Probe this URL instead of the Preview URL (e.g. behind Cloudflare Access). */
	healthUrl?: string;
	healthTimeoutSeconds?: number;
	healthProbes?: number;
	healthWindowSeconds?: number;
	/** Where the PR comment is written (default .reports/preview-comment.md). */
	commentFile?: string;
}

export type PreviewData = {
	environment: string;
	worker: string;
	pr: number;
	/** The Worker Preview's name (pr-N). */
	alias: string;
	/** After --cleanup: whether a Preview was deleted (false: there was none, e.g. a second cleanup). */
	previewDeleted?: boolean;
	database: { name: string; id: string | null; created: boolean; deleted?: boolean };
	seeded?: string | null;
	migrate?: { ok: boolean; summary: string } & Record<string, unknown>;
	previewId?: string | null;
	deploymentId?: string | null;
	/** The token this run passed as WORKERS_PIPELINE_DEPLOYMENT: the health route must echo it. */
	deploymentToken?: string | null;
	url?: string | null;
	health?: HealthObservation;
	commentFile?: string;
};

export const DEFAULT_SEED_FILE = "seed.sql";

/** Pure: the PR's database name and Preview name (lowercase, as workers.dev hostnames are). */
export function planPreviewNames(worker: string, pr: number): { database: string; alias: string } {
	return { database: `${worker}-pr-${pr}`.toLowerCase(), alias: `pr-${pr}` };
}

/**
 * Pure: the wrangler config of the preview. The environment's binding points at the PR's database
 * (what `migrate` reads), and its `previews` block (what `wrangler preview` binds; the project's
 * own block when it has one, else the environment's vars and version metadata) binds it too.
 */
export function planPreviewConfig(
	wrangler: WranglerConfig,
	target: { env: string; binding: string; databaseName: string; databaseId: string },
): WranglerConfig {
	const copy = structuredClone(wrangler);
	const scope = copy.env?.[target.env];
	if (!scope)
		throw new UserError(`the wrangler config has no env.${target.env}.`, "E_CONFIG_INVALID");
	const bindings: WranglerD1Binding[] = scope.d1_databases ?? [];
	const index = bindings.findIndex((b) => b.binding === target.binding);
	if (index === -1)
		throw new UserError(
			`env.${target.env}.d1_databases has no binding "${target.binding}".`,
			"E_CONFIG_INVALID",
		);
	bindings[index] = {
		...bindings[index],
		binding: target.binding,
		database_name: target.databaseName,
		database_id: target.databaseId,
	};
	scope.previews = planPreviewsBlock(copy, target);
	return copy;
}

type Block = Record<string, unknown>;
const blockOf = (value: unknown): Block | undefined =>
	value !== null && typeof value === "object" && !Array.isArray(value)
		? (value as Block)
		: undefined;

/** Pure: the `previews` block with the PR's database bound (wrangler's `previews` is inheritable: env, else top level). */
function planPreviewsBlock(
	wrangler: WranglerConfig,
	target: { env: string; binding: string; databaseName: string; databaseId: string },
): Block {
	const scope = wrangler.env?.[target.env] as Block | undefined;
	const own = blockOf(scope?.previews) ?? blockOf((wrangler as Block).previews);
	const block: Block = own
		? structuredClone(own)
		: { ...(scope?.vars ? { vars: structuredClone(scope.vars) } : {}) };
	const metadata =
		blockOf(scope?.version_metadata) ?? blockOf((wrangler as Block).version_metadata);
	if (!block.version_metadata && metadata) block.version_metadata = { ...metadata };
	const databases = (Array.isArray(block.d1_databases) ? block.d1_databases : []) as Block[];
	block.d1_databases = [
		...databases.filter((d) => d.binding !== target.binding),
		{ binding: target.binding, database_name: target.databaseName, database_id: target.databaseId },
	];
	return block;
}

/** Pure: the PR comment (Markdown) with the URL and the migration summary. */
export function formatPreviewComment(data: PreviewData, ok: boolean): string {
	const lines = [
		`<!-- workers-pipeline preview pr-${data.pr} -->`,
		`### ${ok ? "✅" : "❌"} Preview of #${data.pr}`,
		"",
		`| | |`,
		`|---|---|`,
		`| URL | ${data.url ? `<${data.url}>` : "—"} |`,
		`| Deployment | \`${data.deploymentId ?? "—"}\` |`,
		`| Database | \`${data.database.name}\`${data.database.created ? " (created)" : ""} |`,
		`| Migrations | ${data.migrate?.summary ?? "—"} |`,
		`| Seed | ${data.seeded ?? "none"} |`,
		`| Health | ${data.health ? data.health.reason : "—"} |`,
	];
	return `${lines.join("\n")}\n`;
}

function apiOf(ctx: StepContext): { cf: Cloudflare; accountId: string } {
	const apiToken = ctx.env.CLOUDFLARE_API_TOKEN;
	const accountId = ctx.env.CLOUDFLARE_ACCOUNT_ID;
	if (!apiToken || !accountId)
		throw new UserError(
			"CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID must be set (a token with Workers Scripts Edit and D1 Edit); nothing was sent.",
			"E_CONFIG_MISSING",
		);
	const cf = new Cloudflare({
		apiToken,
		baseURL: ctx.env.CLOUDFLARE_API_BASE_URL || undefined,
		maxRetries: 0,
		logLevel: "off",
	});
	return { cf, accountId };
}

/** The PR database by exact name (the list filter matches substrings: pr-1 would match pr-12). */
async function findDatabase(ctx: StepContext, name: string): Promise<string | undefined> {
	const { cf, accountId } = apiOf(ctx);
	for await (const db of cf.d1.database.list({ account_id: accountId, name })) {
		if (db.name === name && db.uuid) return db.uuid;
	}
	return undefined;
}

async function createDatabase(ctx: StepContext, name: string): Promise<string> {
	const { cf, accountId } = apiOf(ctx);
	const created = await cf.d1.database.create({ account_id: accountId, name });
	if (!created.uuid)
		throw new UserError(`D1 did not return an id for the new database ${name}.`, "E_D1_API");
	return created.uuid;
}

/**
 * Creates nothing: deletes the PR's Worker Preview, then its database. Idempotent: what is already
 * gone (a second cleanup, a PR that never got a preview) is skipped, and that is success.
 */
async function runCleanup(
	ctx: StepContext,
	args: PreviewArgs,
	data: PreviewData,
	findings: Finding[],
): Promise<string> {
	ctx.progress(`wrangler preview delete --name ${data.alias}`);
	const removed = await deletePreview(ctx, {
		project: args.project,
		env: args.env,
		worker: data.worker,
		name: data.alias,
	});
	if (!removed.ok) {
		findings.push({ code: "PREVIEW_DELETE_FAILED", severity: "error", message: removed.message });
		return `the Preview ${data.alias} could not be deleted; its database was kept`;
	}
	data.previewDeleted = removed.deleted;
	const preview = removed.deleted ? `deleted Preview ${data.alias}` : `no Preview ${data.alias}`;
	const id = await findDatabase(ctx, data.database.name);
	data.database.id = id ?? null;
	if (!id) return `${preview}; no database ${data.database.name}`;
	const { cf, accountId } = apiOf(ctx);
	await cf.d1.database.delete(id, { account_id: accountId });
	data.database.deleted = true;
	return `${preview}; deleted database ${data.database.name} (${id})`;
}

/** Runs the seed file once, on a database this run created, as one D1 request. */
async function seedOnce(
	ctx: StepContext,
	args: PreviewArgs,
	databaseId: string,
): Promise<string | null> {
	const file = path.resolve(args.project.root, args.seedFile ?? DEFAULT_SEED_FILE);
	if (!existsSync(file)) {
		if (args.seedFile) throw new UserError(`--seed ${args.seedFile} does not exist.`, "E_USAGE");
		return null;
	}
	const { cf, accountId } = apiOf(ctx);
	await cf.d1.database.query(databaseId, {
		account_id: accountId,
		sql: readFileSync(file, "utf8"),
	});
	return path.relative(args.project.root, file);
}

/** The preview itself: database, migrate, seed, `wrangler preview`, health. */
async function runPreview(
	ctx: StepContext,
	args: PreviewArgs,
	data: PreviewData,
	findings: Finding[],
): Promise<string> {
	const sha = readGitSha(args.project.root, ctx.env) ?? "dev";
	const stamp = readBuildStamp(args.project.root);
	if (!stamp || stamp.version !== sha) {
		findings.push({
			code: "BUILD_MISSING",
			severity: "error",
			message: `no build of ${sha.slice(0, 12)} (${stamp ? `the build in place is of ${stamp.version.slice(0, 12)}` : `no ${BUILD_STAMP} or ${OTHER_BUILD_STAMP}`}); run \`workers-pipeline build\` first.`,
		});
		return "refused: no build of the current commit; nothing was created";
	}
	const policy = planHealthPolicy(args);
	const environment = resolveEnvironment(args.project, args.env);
	const binding = args.binding ?? environment.databases[0]?.binding ?? "DB";
	let id = await findDatabase(ctx, data.database.name);
	if (!id) {
		ctx.progress(`creating D1 database ${data.database.name}`);
		id = await createDatabase(ctx, data.database.name);
		data.database.created = true;
	}
	data.database.id = id;
	const wrangler = planPreviewConfig(args.project.wrangler, {
		env: args.env,
		binding,
		databaseName: data.database.name,
		databaseId: id,
	});
	// Beside the original: wrangler resolves main, assets and migrations_dir from the config's directory.
	const configPath = path.join(
		path.dirname(args.project.wranglerPath),
		`.wrangler-preview-${data.alias}.json`,
	);
	writeFileSync(configPath, JSON.stringify(wrangler, null, "\t"));
	const outputDir = mkdtempSync(path.join(tmpdir(), "wp-preview-"));
	try {
		const project: ProjectConfig = { ...args.project, wrangler, wranglerPath: configPath };
		ctx.progress(`migrating ${data.database.name}`);
		const migrate = await migrateStep.run(ctx, { project, env: args.env, binding });
		findings.push(...migrate.findings);
		data.migrate = { ...migrate.data, ok: migrate.ok, summary: migrate.summary };
		if (!migrate.ok) return `migrate failed on ${data.database.name}: nothing was uploaded`;
		data.seeded = data.database.created ? await seedOnce(ctx, args, id) : null;
		const database = environment.databases.find((d) => d.binding === binding);
		const head = database
			? (parseCatalog(readCatalog({ root: args.project.root, database })).migrations.at(-1)?.name ??
				null)
			: null;
		const token = `${sha.slice(0, 12)}-${randomUUID()}`;
		data.deploymentToken = token;
		ctx.progress(`wrangler preview --name ${data.alias}`);
		const secrets = readDeploySecrets({ root: args.project.root, env: ctx.env });
		const uploaded = await createPreview(
			ctx,
			{ project, env: args.env },
			{
				name: data.alias,
				tag: sha,
				message: `workers-pipeline preview of #${args.pr} at ${sha.slice(0, 12)} by ${describeOwner(ctx.env)}`,
				vars: { [DEPLOYMENT_VAR]: token, ...(head ? { [EXPECTED_HEAD_VAR]: head } : {}) },
				secretsFile: secrets.file,
				outputDir,
				signal: ctx.signal,
			},
		);
		if (!uploaded.ok) {
			findings.push({ code: "DEPLOY_FAILED", severity: "error", message: uploaded.message });
			return "wrangler preview failed: no preview";
		}
		data.previewId = uploaded.previewId;
		data.deploymentId = uploaded.deploymentId;
		data.url = uploaded.urls[0] ?? null;
		const probeUrl =
			args.healthUrl ??
			(data.url
				? new URL(args.project.settings.deploy.healthPath, data.url).toString()
				: undefined);
		if (!probeUrl) {
			findings.push({
				code: "HEALTH_NO_URL",
				severity: "error",
				message:
					"wrangler reported no Preview URL: enable Preview URLs for the Worker (`preview_urls: true`, then `workers-pipeline deploy` once) or pass --health-url.",
			});
			return `Preview ${data.alias} deployed (${uploaded.deploymentId}), but it could not be checked`;
		}
		ctx.progress(
			`waiting for ${probeUrl} to report deployment ${uploaded.deploymentId} (token ${token}) healthy`,
		);
		data.health = await waitForHealth({
			...policy,
			url: probeUrl,
			// By the token this run chose: which id a Preview's version metadata reports is not
			// documented (developers.cloudflare.com/workers/previews/), a var it was given is.
			expect: { deployment: token, expectedHead: head },
			signal: ctx.signal,
			onProbe: (reason) => ctx.progress(`health: ${reason}`),
		});
		if (!data.health.ok) {
			findings.push({
				code: data.health.noRoute ? "HEALTH_NO_ROUTE" : "HEALTH_FAILED",
				severity: "error",
				message: `${probeUrl} did not report a healthy ${uploaded.deploymentId}: ${data.health.reason}.`,
			});
			return `preview ${data.url ?? data.alias} is unhealthy`;
		}
		return `preview of #${args.pr} at ${data.url ?? probeUrl} (Preview ${data.alias}, deployment ${uploaded.deploymentId}, database ${data.database.name})`;
	} finally {
		rmSync(configPath, { force: true });
		rmSync(outputDir, { recursive: true, force: true });
	}
}

export const previewStep = defineStep<PreviewArgs>({
	name: "preview",
	async run(ctx, args) {
		const started = performance.now();
		if (!Number.isInteger(args.pr) || args.pr < 1)
			throw new UserError(`--pr expects a pull request number, not ${args.pr}.`, "E_USAGE");
		refusePagesProject(args.project, "preview");
		const environment = resolveEnvironment(args.project, args.env);
		apiOf(ctx);
		const names = planPreviewNames(environment.workerName, args.pr);
		const data: PreviewData = {
			environment: args.env,
			worker: environment.workerName,
			pr: args.pr,
			alias: names.alias,
			database: { name: names.database, id: null, created: false },
		};
		const findings: Finding[] = [];
		const summary = args.cleanup
			? await runCleanup(ctx, args, data, findings)
			: await runPreview(ctx, args, data, findings);
		const ok = !hasErrors(findings);
		if (!args.cleanup) {
			const file = path.resolve(
				args.project.root,
				args.commentFile ?? path.join(".reports", "preview-comment.md"),
			);
			mkdirSync(path.dirname(file), { recursive: true });
			writeFileSync(file, formatPreviewComment(data, ok));
			data.commentFile = path.relative(args.project.root, file);
		}
		return makeStepResult("preview", started, { ok, summary, findings, data });
	},
});
