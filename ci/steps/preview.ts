// `preview --pr N`: a pull request's own D1 database (created on first use, migrated by the
// migrate step with all its guarantees, seeded once), a version uploaded with
// `--preview-alias pr-N` bound to that database, its preview URL health-checked, and a PR
// comment the shim posts. `--cleanup` deletes the database when the PR closes.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Cloudflare from "cloudflare";
import { resolveEnvironment } from "../config/load.ts";
import type { ProjectConfig, WranglerConfig, WranglerD1Binding } from "../config/schema.ts";
import { type HealthObservation, waitForHealth } from "../deploy/health-check.ts";
import { readDeploySecrets } from "../deploy/secrets.ts";
import { uploadVersion } from "../deploy/versions.ts";
import { UserError } from "../errors.ts";
import { describeOwner, readGitSha } from "../git.ts";
import { parseCatalog, readCatalog } from "../migrations/catalog.ts";
import { type Finding, hasErrors } from "../report/model.ts";
import { defineStep, makeStepResult, type StepContext } from "./_step.ts";
import { readBuildStamp } from "./build.ts";
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
	/** Probe this URL instead of the preview alias URL (e.g. behind Cloudflare Access). */
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
	alias: string;
	database: { name: string; id: string | null; created: boolean; deleted?: boolean };
	seeded?: string | null;
	migrate?: { ok: boolean; summary: string } & Record<string, unknown>;
	versionId?: string | null;
	url?: string | null;
	health?: HealthObservation;
	commentFile?: string;
};

export const DEFAULT_SEED_FILE = "seed.sql";

/** Pure: the PR's database name and preview alias (lowercase, as workers.dev hostnames are). */
export function planPreviewNames(worker: string, pr: number): { database: string; alias: string } {
	return { database: `${worker}-pr-${pr}`.toLowerCase(), alias: `pr-${pr}` };
}

/** Pure: the wrangler config of the preview, with the binding pointed at the PR's database. */
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
	return copy;
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
		`| Version | \`${data.versionId ?? "—"}\` |`,
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

/** Creates nothing: removes the PR's database (and says the alias stays until it is reused). */
async function runCleanup(
	ctx: StepContext,
	data: PreviewData,
	findings: Finding[],
): Promise<string> {
	const id = await findDatabase(ctx, data.database.name);
	data.database.id = id ?? null;
	if (!id) return `no database ${data.database.name}: nothing to clean up`;
	const { cf, accountId } = apiOf(ctx);
	await cf.d1.database.delete(id, { account_id: accountId });
	data.database.deleted = true;
	findings.push({
		code: "PREVIEW_ALIAS_KEPT",
		severity: "warning",
		message: `the preview alias ${data.alias} keeps pointing at its last version (the Workers API deletes no aliases); with its database gone it answers 503 until a new preview reuses the name.`,
	});
	return `deleted database ${data.database.name} (${id})`;
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

/** The preview itself: database, migrate, seed, upload with the alias, health. */
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
			message: `no build of ${sha.slice(0, 12)} (.open-next/.workers-pipeline-build.json); run \`workers-pipeline build\` first.`,
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
		ctx.progress(`wrangler versions upload --preview-alias ${data.alias}`);
		const secrets = readDeploySecrets({ root: args.project.root, env: ctx.env });
		const uploaded = await uploadVersion(
			ctx,
			{ project, env: args.env },
			{
				tag: sha,
				message: `workers-pipeline preview of #${args.pr} at ${sha.slice(0, 12)} by ${describeOwner(ctx.env)}`,
				vars: head ? { [EXPECTED_HEAD_VAR]: head } : {},
				previewAlias: data.alias,
				secretsFile: secrets.file,
				outputDir,
				signal: ctx.signal,
			},
		);
		if (!uploaded.ok) {
			findings.push({ code: "DEPLOY_FAILED", severity: "error", message: uploaded.message });
			return "wrangler versions upload failed: no preview";
		}
		data.versionId = uploaded.versionId;
		data.url = uploaded.previewAliasUrl ?? null;
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
					"wrangler reported no preview alias URL: enable preview URLs for the Worker (`preview_urls: true`) or pass --health-url.",
			});
			return `version ${uploaded.versionId} uploaded, but its preview could not be checked`;
		}
		ctx.progress(`waiting for ${probeUrl} to report version ${uploaded.versionId} healthy`);
		data.health = await waitForHealth({
			...policy,
			url: probeUrl,
			expect: { versionId: uploaded.versionId, expectedHead: head },
			signal: ctx.signal,
			onProbe: (reason) => ctx.progress(`health: ${reason}`),
		});
		if (!data.health.ok) {
			findings.push({
				code: data.health.noRoute ? "HEALTH_NO_ROUTE" : "HEALTH_FAILED",
				severity: "error",
				message: `${probeUrl} did not report a healthy ${uploaded.versionId}: ${data.health.reason}.`,
			});
			return `preview ${data.url ?? data.alias} is unhealthy`;
		}
		return `preview of #${args.pr} at ${data.url ?? probeUrl} (version ${uploaded.versionId}, database ${data.database.name})`;
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
			? await runCleanup(ctx, data, findings)
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
