import { randomUUID } from "node:crypto";
import { D1Client } from "../cloudflare/d1-client.ts";
import { resolveAccountId, resolveEnvironment, selectDatabase } from "../config/load.ts";
import type { D1Database, ProjectConfig, ResolvedEnvironment } from "../config/schema.ts";
import { UserError } from "../errors.ts";
import type { StepContext } from "./_step.ts";

export interface RemoteArgs {
	project: ProjectConfig;
	env?: string;
	binding?: string;
}

export interface RemoteTarget {
	environment: ResolvedEnvironment;
	database: D1Database;
	client: D1Client;
	apiToken: string;
}

/** Resolves env + binding + credentials, before any request; every problem is a UserError (exit 2). */
export function openRemote(ctx: StepContext, { project, env, binding }: RemoteArgs): RemoteTarget {
	const environment = resolveEnvironment(project, env);
	const database = selectDatabase(project, environment, binding);
	const lookup = database.databaseId
		? undefined
		: lookupFor(project.wranglerPath, env, environment.workerName, database);
	const apiToken = ctx.env.CLOUDFLARE_API_TOKEN;
	const accountId = resolveAccountId(project, env, ctx.env.CLOUDFLARE_ACCOUNT_ID);
	const missing = [
		!apiToken && "CLOUDFLARE_API_TOKEN",
		!accountId && "CLOUDFLARE_ACCOUNT_ID",
	].filter(Boolean);
	if (!apiToken || !accountId) {
		throw new UserError(
			`${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not set. Export an API token with D1 Edit permission and the account id (in CI, from secrets; the account may also be account_id in the wrangler config); nothing was sent.`,
			"E_CONFIG_MISSING",
		);
	}
	const client = new D1Client({
		apiToken,
		accountId,
		databaseId: database.databaseId,
		lookup,
		baseURL: ctx.env.CLOUDFLARE_API_BASE_URL || undefined,
		timeoutMs: Number(ctx.env.WORKERS_PIPELINE_REQUEST_TIMEOUT_MS) || 60_000,
	});
	return { environment, database, client, apiToken };
}

/**
 * A binding without database_id, found by name as wrangler finds it (src/d1/utils.ts
 * getDatabaseByNameOrBinding): its database_name, else the name wrangler deploy auto-provisions
 * (src/deployment-bundle/auto-provisioned-name.ts: `<worker>-<binding, lower case, _ as ->`).
 */
export function lookupFor(
	wranglerPath: string,
	env: string | undefined,
	workerName: string | undefined,
	database: D1Database,
): { name: string; missing: () => Error } {
	const where = `${wranglerPath}: ${env ? `env.${env}.` : ""}d1_databases binding "${database.binding}"`;
	if (database.databaseName) {
		const name = database.databaseName;
		return {
			name,
			missing: () =>
				new UserError(
					`${where} has no database_id, and the account has no D1 database named "${name}": create it (\`wrangler d1 create ${name}\`), or set database_id to the id \`wrangler d1 list\` shows.`,
					"E_CONFIG_INVALID",
				),
		};
	}
	if (!workerName) {
		throw new UserError(
			`${where} has neither database_name nor database_id, and the Worker has no name: set database_id (\`wrangler d1 list\`), or a name for the Worker so wrangler deploy can provision the database.`,
			"E_CONFIG_INVALID",
		);
	}
	const name = `${workerName}-${database.binding.toLowerCase().replaceAll("_", "-")}`;
	return {
		name,
		missing: () =>
			new UserError(
				`${where} has neither database_name nor database_id, and the database wrangler deploy provisions for it ("${name}") does not exist yet: deploy once with \`wrangler deploy\` to provision it, or set database_id.`,
				"E_CONFIG_INVALID",
			),
	};
}

export const newRunId = () => randomUUID();

/** The two ways to put the database back, printed wherever a restore may be needed. */
export function restoreCommands(
	envName: string | undefined,
	database: D1Database,
	bookmark: string,
): string[] {
	const env = envFlag(envName);
	return [
		`workers-pipeline restore${env} --binding ${database.binding} --bookmark ${bookmark}`,
		`wrangler d1 time-travel restore ${database.databaseName ?? database.binding}${env} --bookmark=${bookmark}`,
	];
}

/** ` --env <name>` for a command line, or nothing for the top-level Worker (as in wrangler). */
export const envFlag = (envName: string | undefined): string =>
	envName ? ` --env ${envName}` : "";
