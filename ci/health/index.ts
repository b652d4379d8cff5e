// workers-pipeline/health: the app side of a verified deploy. A framework-agnostic handler
// (Request + env → Response) that says which Worker version answers, which migration the
// database is at, and whether that is the one the deploy expects. No `node:` imports and no
// framework dependency: it runs inside the Worker.

export interface HealthOptions {
	/**
	 * The D1 binding to read the ledger from. Default: `DB`, or the Worker's only D1 binding when
	 * it has no `DB` (a Worker with several D1 bindings and none named DB must name one).
	 */
	binding?: string;
	/** wrangler's ledger table (the binding's `migrations_table`). */
	migrationsTable?: string;
	/** The Workers version metadata binding (`"version_metadata": { "binding": … }`). */
	versionBinding?: string;
	/** The Worker var in which deploy passes the migration the new version needs. */
	expectedVar?: string;
	/** The Worker var in which `preview` passes a token naming its deployment. */
	deploymentVar?: string;
}

export interface HealthBody {
	status: "ok" | "error";
	/** The running version id, from the version metadata binding. */
	version: string | null;
	/** The deployment token the pipeline passed (`preview`); absent when it passed none. */
	deployment?: string;
	schema: { head: string | null; expected: string | null };
	db: "ok" | "error";
	reason?: string;
}

export const DEFAULT_HEALTH_OPTIONS: Required<HealthOptions> = {
	binding: "DB",
	migrationsTable: "d1_migrations",
	versionBinding: "CF_VERSION_METADATA",
	expectedVar: "WORKERS_PIPELINE_EXPECTED_HEAD",
	deploymentVar: "WORKERS_PIPELINE_DEPLOYMENT",
};

/** The part of a D1 binding the handler uses (structural, so no @cloudflare/workers-types). */
interface D1Like {
	prepare(sql: string): D1StatementLike;
}
interface D1StatementLike {
	bind(...values: unknown[]): D1StatementLike;
	first<T = unknown>(): Promise<T | null>;
}

// Any name, quoted as wrangler quotes migrations_table (wrangler d1/migrations/helpers.ts escapeIdentifier).
const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;

const isObject = (value: unknown): value is Record<string, unknown> =>
	typeof value === "object" && value !== null;

const isD1 = (value: unknown): value is D1Like =>
	isObject(value) && typeof value.prepare === "function";

/** A D1Database by its methods (workers-types D1Database: prepare, batch, exec); KV, R2, queues have no prepare. */
const isD1Database = (value: unknown): boolean =>
	isD1(value) &&
	typeof (value as unknown as Record<string, unknown>).batch === "function" &&
	typeof (value as unknown as Record<string, unknown>).exec === "function";

/** `DB` when the Worker has it, else its only D1 binding, else `DB` (reported missing). */
function defaultBinding(env: Record<string, unknown>): string {
	const fallback = DEFAULT_HEALTH_OPTIONS.binding;
	if (fallback in env) return fallback;
	const databases = Object.keys(env).filter((key) => isD1Database(env[key]));
	return databases.length === 1 ? (databases[0] as string) : fallback;
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * The Worker's env as the handler reads it. The public signatures take any object, so an app's
 * own `Env` interface (hand-written or from `wrangler types`) fits: an interface has no index
 * signature, so it is not assignable to Record<string, unknown>.
 */
const bindingsOf = (env: object | null | undefined): Record<string, unknown> =>
	(env ?? {}) as Record<string, unknown>;

/** `{ id, tag, timestamp }` of the version metadata binding → the version id. */
export function readVersionId(env: object, binding: string): string | null {
	const metadata = bindingsOf(env)[binding];
	return isObject(metadata) && typeof metadata.id === "string" && metadata.id !== ""
		? metadata.id
		: null;
}

interface LedgerState {
	head: string | null;
	/** Whether the expected migration has a ledger row (true when nothing is expected). */
	hasExpected: boolean;
}

async function readLedger(
	db: D1Like,
	table: string,
	expected: string | null,
): Promise<LedgerState> {
	let head: string | null;
	try {
		const row = await db
			.prepare(`SELECT name FROM ${quoted(table)} ORDER BY id DESC LIMIT 1`)
			.first<{ name?: unknown }>();
		head = typeof row?.name === "string" ? row.name : null;
	} catch (error) {
		// A database that has never been migrated has no ledger table: reachable, nothing applied.
		if (/no such table/i.test(messageOf(error)))
			return { head: null, hasExpected: expected === null };
		throw error;
	}
	if (expected === null || head === expected) return { head, hasExpected: true };
	if (head === null) return { head, hasExpected: false };
	// The schema may be ahead of this version (a newer deploy migrated already): fine as long as
	// this version's migration is applied. Any naming scheme works: the ledger is keyed by name.
	const row = await db
		.prepare(`SELECT 1 AS found FROM ${quoted(table)} WHERE name = ?`)
		.bind(expected)
		.first();
	return { head, hasExpected: row !== null };
}

/** Pure: the verdict for what the handler read. */
export function judgeHealth(input: {
	version: string | null;
	versionBinding: string;
	head: string | null;
	expected: string | null;
	hasExpected: boolean;
}): string | undefined {
	if (input.version === null)
		return `no version metadata: add "version_metadata": { "binding": "${input.versionBinding}" } to the wrangler config`;
	if (input.hasExpected) return undefined;
	if (input.head === null) return `no migrations applied, expected ${input.expected}`;
	return `schema behind: head ${input.head}, expected ${input.expected}`;
}

export function healthResponse(body: HealthBody, method = "GET"): Response {
	return new Response(method === "HEAD" ? null : JSON.stringify(body), {
		status: body.status === "ok" ? 200 : 503,
		headers: { "content-type": "application/json", "cache-control": "no-store" },
	});
}

/** GET /api/health: 200 when the database answers and has the expected migration, else 503 with the reason. */
export async function handleHealth(
	request: Request,
	workerEnv: object,
	options: HealthOptions = {},
): Promise<Response> {
	const settings = { ...DEFAULT_HEALTH_OPTIONS, ...options };
	const env = bindingsOf(workerEnv);
	const version = readVersionId(env, settings.versionBinding);
	const expectedValue = env[settings.expectedVar];
	const expected = typeof expectedValue === "string" && expectedValue !== "" ? expectedValue : null;
	const deploymentValue = env[settings.deploymentVar];
	// Only when the pipeline passed one (`preview`): other bodies stay as they were.
	const deployment =
		typeof deploymentValue === "string" && deploymentValue !== ""
			? { deployment: deploymentValue }
			: {};
	const schema: HealthBody["schema"] = { head: null, expected };
	const fail = (db: HealthBody["db"], reason: string): Response =>
		healthResponse({ status: "error", version, ...deployment, schema, db, reason }, request.method);
	const binding = options.binding ?? defaultBinding(env);
	const db = env[binding];
	if (!isD1(db))
		return fail(
			"error",
			`database unreachable: the ${binding} binding is missing${options.binding === undefined ? ` (with no ${DEFAULT_HEALTH_OPTIONS.binding} binding, the health handler needs its D1 binding named: { binding: "<yours>" })` : ""}`,
		);
	let ledger: LedgerState;
	try {
		ledger = await readLedger(db, settings.migrationsTable, expected);
	} catch (error) {
		return fail("error", `database unreachable: ${messageOf(error)}`);
	}
	schema.head = ledger.head;
	const reason = judgeHealth({
		version,
		versionBinding: settings.versionBinding,
		...ledger,
		expected,
	});
	return reason === undefined
		? healthResponse({ status: "ok", version, ...deployment, schema, db: "ok" }, request.method)
		: fail("ok", reason);
}
