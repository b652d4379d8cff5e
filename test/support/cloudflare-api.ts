// A loopback Cloudflare v4 API for D1 that real wrangler (CLOUDFLARE_API_BASE_URL) and the
// `cloudflare` SDK (baseURL) can talk to: envelopes, auth, D1 query/raw/export/import, Time Travel,
// and per-request fault injection. Routes and shapes follow wrangler 4.164's wrangler-dist/cli.js.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type Database from "better-sqlite3";
import {
	D1DatabaseState,
	D1Error,
	type D1Meta,
	type D1Query,
	type D1StatementResult,
	type DumpOptions,
	dumpSnapshot,
} from "./d1-database.ts";
import { type Fault, type FaultHook, FaultInjector, type FaultRequest } from "./faults.ts";
import { createWorkersApi, type WorkersControl } from "./workers-api.ts";

export { D1_NOT_AUTHORIZED_MESSAGE, D1_TRANSACTION_MESSAGE } from "./d1-sql.ts";
export type { Fault, FaultHook, FaultRequest, FaultRule } from "./faults.ts";
export { FaultInjector, randomFaultHook, seededRandom } from "./faults.ts";
export type {
	DeployFailure,
	WorkerBinding,
	WorkerDeployment,
	WorkersControl,
	WorkerVersion,
} from "./workers-api.ts";

export const API_BASE_PATH = "/client/v4";

export interface D1DatabaseSpec {
	uuid: string;
	name: string;
}

export interface CloudflareApiOptions {
	token: string;
	accountId: string;
	accountName?: string;
	databases?: D1DatabaseSpec[];
	// The account's workers.dev subdomain (default "loopback": https://<script>.loopback.workers.dev).
	workersSubdomain?: string;
	// Where unknown routes are reported (default: console.warn); they also land in `unknownRoutes`.
	log?: (line: string) => void;
	// D1's platform limits, each overridable so a test can reach it quickly.
	limits?: Partial<D1Limits>;
	// The clock bookmark retention and rate-limit windows are judged by (default Date.now).
	now?: () => number;
}

export interface D1Limits {
	// developers.cloudflare.com/d1/platform/limits: "Maximum SQL query duration 30 seconds".
	requestMs: number;
	// developers.cloudflare.com/fundamentals/api/reference/limits: 1,200 requests per 5 minutes
	// per user; past it "all API calls for the next five minutes will be blocked" with 429.
	rateLimit: { requests: number; windowMs: number; blockMs: number };
	// developers.cloudflare.com/d1/platform/limits: "10 restores per 10 minutes (per database)".
	restores: { count: number; windowMs: number };
	// developers.cloudflare.com/d1/platform/limits: Time Travel 30 days (Workers Paid) / 7 (Free).
	plan: "paid" | "free";
	// workers-sdk#9519: after a refused export of a database with virtual tables, every query
	// fails with "Currently processing a long-running export" (reported as indefinite).
	exportBlockMs: number;
}

export const DEFAULT_D1_LIMITS: D1Limits = {
	requestMs: 30_000,
	rateLimit: { requests: 1200, windowMs: 5 * 60_000, blockMs: 5 * 60_000 },
	restores: { count: 10, windowMs: 10 * 60_000 },
	plan: "paid",
	exportBlockMs: 10 * 60_000,
};

const DAY_MS = 24 * 60 * 60_000;

// developers.cloudflare.com/d1/observability/debug-d1 (List of D1_ERRORs): the errors D1 says to
// retry, with their texts; a D1 team answer (community.cloudflare.com/t/923198) adds that a
// storage operation past 30 s resets the Durable Object and rejects pending requests.
export const D1_TRANSIENT_ERRORS = {
	codeUpdated: "D1 DB reset because its code was updated.",
	startupReset: "Internal error while starting up D1 DB storage caused object to be reset.",
	networkLost: "Network connection lost.",
	timeoutReset: "D1 DB storage operation exceeded timeout which caused object to be reset.",
} as const;

export interface RequestRecord {
	method: string;
	path: string;
	query: string;
	body?: string;
	// 0 when the socket was reset instead of answered.
	status: number;
	fault?: Fault["kind"];
}

export interface CloudflareApi {
	// e.g. http://127.0.0.1:43210/client/v4 (CLOUDFLARE_API_BASE_URL / SDK baseURL)
	url: string;
	origin: string;
	addDatabase(db: D1DatabaseSpec): void;
	// Direct access for seeding and assertions; a Time Travel restore replaces the handle.
	database(uuid: string): Database.Database;
	serialize(uuid: string): Buffer;
	currentBookmark(uuid: string): string;
	requests: RequestRecord[];
	unknownRoutes: string[];
	// Workers scripts, versions, deployments, secrets and assets (see workers-api.ts).
	workers: WorkersControl;
	faults: FaultInjector;
	setFaultHook(hook: FaultHook | undefined): void;
	close(): Promise<void>;
}

interface CfError {
	code: number;
	message: string;
	error_chain?: CfError[];
}

interface Reply {
	status: number;
	body: unknown;
	headers?: Record<string, string>;
}

interface RouteContext {
	// Each database's restore generation when the request arrived.
	arrivedGeneration?: Map<string, number>;
	method: string;
	segments: string[];
	params: URLSearchParams;
	body: Buffer;
	json: () => Record<string, unknown>;
}

interface ExportJob {
	uuid: string;
	options: DumpOptions;
}

interface ImportJob {
	uuid: string;
	response: Record<string, unknown>;
}

const ok = (result: unknown, extra: Record<string, unknown> = {}): Reply => ({
	status: 200,
	body: { success: true, errors: [], messages: [], result, ...extra },
});

const fail = (status: number, ...errors: CfError[]): Reply => ({
	status,
	body: { success: false, errors, messages: [], result: null },
});

// Default envelopes for injected status faults, after the codes Cloudflare actually returns.
function faultReply(fault: Extract<Fault, { kind: "status" }>): Reply {
	if (fault.status === 429 && fault.retryAfterSeconds !== undefined)
		return rateLimitReply(fault.retryAfterSeconds * 1000, fault.d1Code, fault.message);
	const fallback =
		fault.status === 429
			? { code: 971, message: "Please wait and consider throttling your request speed" }
			: fault.status >= 500
				? { code: 7500, message: `internal error; reference = ${randomBytes(12).toString("hex")}` }
				: fault.status === 401 || fault.status === 403
					? { code: 10000, message: "Authentication error" }
					: { code: 7400, message: "The request is malformed" };
	return fail(fault.status, {
		code: fault.d1Code ?? fallback.code,
		message: fault.message ?? fallback.message,
	});
}

// A 429 from the API: `retry-after` in whole seconds, rounded up
// (developers.cloudflare.com/fundamentals/api/reference/limits, "Rate limiting headers"); the
// code 10100 is the one the rate-limit answers carry (issue 13 §1).
function rateLimitReply(remainingMs: number, code = 10100, message?: string): Reply {
	const seconds = Math.max(1, Math.ceil(remainingMs / 1000));
	return {
		...fail(429, {
			code,
			message: message ?? "Rate limited. Please wait and consider throttling your request speed",
		}),
		headers: { "retry-after": String(seconds) },
	};
}

// A transient D1 failure as the API reports it: 500 with D1's text (debug-d1 error list).
const transientReply = (message: string): Reply =>
	fail(500, { code: 7500, message: `D1_ERROR: ${message}` });

async function readBody(req: IncomingMessage): Promise<Buffer> {
	const chunks: Buffer[] = [];
	for await (const chunk of req) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const hasVirtualTables = (db: D1DatabaseState) =>
	db.db
		.prepare(
			"SELECT 1 FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'",
		)
		.get() !== undefined;

function paginate<T>(items: T[], params: URLSearchParams): Reply {
	const perPage = Math.max(1, Number(params.get("per_page") ?? 1000) || 1000);
	const page = Math.max(1, Number(params.get("page") ?? 1) || 1);
	const slice = items.slice((page - 1) * perPage, page * perPage);
	return ok(slice, {
		result_info: {
			page,
			per_page: perPage,
			count: slice.length,
			total_count: items.length,
			total_pages: Math.max(1, Math.ceil(items.length / perPage)),
		},
	});
}

const toQueryResult = (r: D1StatementResult) => ({
	results: r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i]]))),
	success: true,
	meta: r.meta,
});

const toRawResult = (r: D1StatementResult) => ({
	results: { columns: r.columns, rows: r.rows },
	success: true,
	meta: r.meta,
});

// `{sql, params}` or `{batch: [{sql, params}]}` (the SDK's D1SingleQuery | MultipleQueries).
function parseQueries(body: Record<string, unknown>): D1Query[] {
	const batch = body.batch;
	const queries = Array.isArray(batch) ? batch : [body];
	if (queries.length === 0 || !queries.every((q) => typeof q?.sql === "string")) {
		throw new D1Error("The request is malformed: sql is required", { code: 7400 });
	}
	return queries.map((q) => ({
		sql: q.sql as string,
		params: Array.isArray(q.params) ? (q.params as unknown[]) : [],
	}));
}

function sumMeta(results: D1StatementResult[], sizeAfter: number): D1Meta {
	const total = (pick: (m: D1Meta) => number) => results.reduce((n, r) => n + pick(r.meta), 0);
	const duration = total((m) => m.duration);
	return {
		served_by: "v3-prod",
		served_by_region: "WEUR",
		served_by_primary: true,
		timings: { sql_duration_ms: duration },
		duration,
		changes: total((m) => m.changes),
		last_row_id: results.at(-1)?.meta.last_row_id ?? 0,
		changed_db: results.some((r) => r.meta.changed_db),
		size_after: sizeAfter,
		rows_read: total((m) => m.rows_read),
		rows_written: total((m) => m.rows_written),
	};
}

export async function startCloudflareApi(options: CloudflareApiOptions): Promise<CloudflareApi> {
	const databases = new Map<string, D1DatabaseState>();
	const faults = new FaultInjector();
	const requests: RequestRecord[] = [];
	const unknownRoutes: string[] = [];
	const exports = new Map<string, ExportJob>();
	const signedExports = new Map<string, { filename: string; sql: string }>();
	const uploads = new Map<string, { uuid: string; filename: string; content?: Buffer }>();
	const imports = new Map<string, ImportJob>();
	const log = options.log ?? ((line: string) => console.warn(line));
	const limits: D1Limits = { ...DEFAULT_D1_LIMITS, ...options.limits };
	const now = options.now ?? Date.now;
	// Rate limiting per token: request times in the window, and the end of a running block.
	const rate = { times: [] as number[], blockedUntil: 0 };
	// Per database: restore times (for the 10-per-10-minutes limit), a generation that a restore
	// bumps (a query in flight across it is cancelled), and when a failed export stops blocking.
	const restoreTimes = new Map<string, number[]>();
	const generation = new Map<string, number>();
	const exportBlockedUntil = new Map<string, number>();
	const activeExports = new Set<string>();
	// When each bookmark was first handed out, for the Time Travel retention window.
	const bookmarkTimes = new Map<string, number>();
	const seen = (bookmark: string) => {
		if (!bookmarkTimes.has(bookmark)) bookmarkTimes.set(bookmark, now());
		return bookmark;
	};
	const retentionMs = () => (limits.plan === "paid" ? 30 : 7) * DAY_MS;
	const workers = createWorkersApi({
		accountId: options.accountId,
		subdomain: options.workersSubdomain,
		hasD1Database: (id) => databases.has(id),
	});
	const accountName = options.accountName ?? "Loopback Account";
	let origin = "";

	const addDatabase = (spec: D1DatabaseSpec) => {
		if (databases.has(spec.uuid)) throw new Error(`database ${spec.uuid} already exists`);
		databases.set(spec.uuid, new D1DatabaseState(spec));
	};
	for (const spec of options.databases ?? []) addDatabase(spec);

	const stateOf = (uuid: string) => {
		const state = databases.get(uuid);
		if (state === undefined) throw new Error(`no database ${uuid}`);
		return state;
	};

	const findDatabase = (idOrName: string) =>
		databases.get(idOrName) ?? [...databases.values()].find((d) => d.name === idOrName);

	const describe = (d: D1DatabaseState) => ({
		uuid: d.uuid,
		name: d.name,
		created_at: d.createdAt,
		version: "production",
		num_tables: d.tableCount(),
		file_size: d.sizeBytes(),
		running_in_region: "WEUR",
		read_replication: { mode: "disabled" },
		jurisdiction: null,
	});

	const account = {
		id: options.accountId,
		name: accountName,
		type: "standard",
		created_on: "2024-01-01T00:00:00Z",
	};

	// Cloudflare answers 9106 without credentials, 6003/6111 for a malformed header, and our
	// choice for a wrong token is 401/9109; a valid token on another account gets 403/10000.
	function authenticate(req: IncomingMessage, segments: string[]): Reply | undefined {
		const header = req.headers.authorization;
		if (header === undefined) {
			return fail(400, {
				code: 9106,
				message: "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
			});
		}
		const match = /^Bearer (\S+)$/.exec(header);
		if (match === null) {
			return fail(400, {
				code: 6003,
				message: "Invalid request headers",
				error_chain: [{ code: 6111, message: "Invalid format for Authorization header" }],
			});
		}
		if (match[1] !== options.token) {
			const verify = segments.at(-1) === "verify";
			return verify
				? fail(401, { code: 1000, message: "Invalid API Token" })
				: fail(401, { code: 9109, message: "Invalid access token" });
		}
		if (
			segments[0] === "accounts" &&
			segments[1] !== undefined &&
			segments[1] !== options.accountId
		) {
			return fail(403, { code: 10000, message: "Authentication error" });
		}
		return undefined;
	}

	// developers.cloudflare.com/fundamentals/api/reference/limits: past the quota every call is
	// refused for the block time, whatever it is; the window slides.
	function checkRateLimit(): Reply | undefined {
		const t = now();
		if (t < rate.blockedUntil) return rateLimitReply(rate.blockedUntil - t);
		const { requests, windowMs, blockMs } = limits.rateLimit;
		rate.times = rate.times.filter((x) => x > t - windowMs);
		rate.times.push(t);
		if (rate.times.length <= requests) return undefined;
		rate.blockedUntil = t + blockMs;
		rate.times = [];
		return rateLimitReply(blockMs);
	}

	// A query: refused while an export holds the database (workers-sdk#9519), cancelled when a
	// restore happened while it was in flight (developers.cloudflare.com/d1/reference/time-travel:
	// "restoring a database ... will cancel any in-flight queries"), failed as a reset past the
	// 30 s request limit with nothing committed (the limit is per request, the whole batch).
	function runQuery(
		db: D1DatabaseState,
		ctx: RouteContext,
		toResult: (r: D1StatementResult) => unknown,
	): Reply {
		if (activeExports.has(db.uuid) || (exportBlockedUntil.get(db.uuid) ?? 0) > now()) {
			return fail(400, {
				code: 7500,
				message: "D1_ERROR: Currently processing a long-running export.",
			});
		}
		if ((ctx.arrivedGeneration?.get(db.uuid) ?? 0) !== (generation.get(db.uuid) ?? 0)) {
			return transientReply(
				"the database was restored while this query was in flight; it was cancelled.",
			);
		}
		const before = db.currentBookmark();
		const started = performance.now();
		const results = db.execute(parseQueries(ctx.json()));
		if (performance.now() - started > limits.requestMs) {
			// The request ran past the limit: D1 resets the object and nothing of it commits.
			if (db.currentBookmark() !== before) db.restore(before);
			return transientReply(D1_TRANSIENT_ERRORS.timeoutReset);
		}
		return ok(results.map(toResult));
	}

	function checkBookmarkAge(bookmark: string): Reply | undefined {
		const at = bookmarkTimes.get(bookmark);
		if (at === undefined || now() - at <= retentionMs()) return undefined;
		return fail(400, {
			code: 7400,
			message: `The request is malformed: bookmark ${bookmark} is older than the Time Travel window (${limits.plan === "paid" ? 30 : 7} days)`,
		});
	}

	function restoreDatabase(db: D1DatabaseState, bookmark: string): Reply {
		const old = checkBookmarkAge(bookmark);
		if (old !== undefined) return old;
		const t = now();
		const times = (restoreTimes.get(db.uuid) ?? []).filter((x) => x > t - limits.restores.windowMs);
		if (times.length >= limits.restores.count) {
			return rateLimitReply(
				(times[0] as number) + limits.restores.windowMs - t,
				7429,
				`Too many restore operations: at most ${limits.restores.count} per ${limits.restores.windowMs / 60_000} minutes for a database`,
			);
		}
		const restored = db.restore(bookmark);
		restoreTimes.set(db.uuid, [...times, t]);
		generation.set(db.uuid, (generation.get(db.uuid) ?? 0) + 1);
		seen(restored.previous_bookmark);
		return ok({ ...restored, message: `Database restored to bookmark ${restored.bookmark}` });
	}

	function routeD1(ctx: RouteContext, rest: string[]): Reply | undefined {
		const { method, params } = ctx;
		if (rest.length === 0) {
			if (method === "GET") {
				const name = params.get("name");
				const list = [...databases.values()]
					.filter((d) => name === null || d.name.includes(name))
					.map(({ uuid, name: n, createdAt }) => ({
						uuid,
						name: n,
						created_at: createdAt,
						version: "production",
						jurisdiction: null,
					}));
				return paginate(list, params);
			}
			if (method === "POST") {
				const name = ctx.json().name;
				if (typeof name !== "string" || name === "") {
					return fail(400, { code: 7400, message: "The request is malformed: name is required" });
				}
				if (findDatabase(name) !== undefined) {
					return fail(400, { code: 7502, message: "A database with that name already exists" });
				}
				const uuid = randomUUID();
				addDatabase({ uuid, name });
				return ok({ ...describe(stateOf(uuid)), created_in_region: "WEUR" });
			}
			return undefined;
		}
		const [id = "", action, sub] = rest.map(decodeURIComponent);
		const db = findDatabase(id);
		if (db === undefined) {
			return fail(404, { code: 7404, message: `The database ${id} could not be found` });
		}
		const route = `${method} ${[action, sub].filter(Boolean).join("/")}`;
		switch (route) {
			case "GET ": {
				const fields = [...params.getAll("fields"), ...params.getAll("fields[]")]
					.flatMap((f) => f.split(","))
					.filter(Boolean);
				const info = describe(db);
				return ok(
					fields.length === 0
						? info
						: Object.fromEntries(Object.entries(info).filter(([k]) => fields.includes(k))),
				);
			}
			case "DELETE ":
				db.close();
				databases.delete(db.uuid);
				return ok(null);
			case "POST query":
				return runQuery(db, ctx, toQueryResult);
			case "POST raw":
				return runQuery(db, ctx, toRawResult);
			case "GET time_travel/bookmark": {
				const timestamp = params.get("timestamp");
				if (timestamp === null || timestamp === "")
					return ok({ bookmark: seen(db.currentBookmark()) });
				const at = Date.parse(timestamp);
				if (Number.isNaN(at) || now() - at > retentionMs()) {
					return fail(400, {
						code: 7400,
						message: `The request is malformed: invalid timestamp ${timestamp}${Number.isNaN(at) ? "" : " (older than the Time Travel window)"}`,
					});
				}
				return ok({ bookmark: seen(db.bookmarkAt(at)) });
			}
			case "POST time_travel/restore": {
				const timestamp = params.get("timestamp");
				const bookmark =
					params.get("bookmark") || (timestamp ? db.bookmarkAt(Date.parse(timestamp)) : undefined);
				if (bookmark === undefined) {
					return fail(400, {
						code: 7400,
						message: "The request is malformed: bookmark or timestamp is required",
					});
				}
				return restoreDatabase(db, bookmark);
			}
			case "POST export":
				return exportDatabase(db, ctx.json());
			case "POST import":
				return importDatabase(db, ctx.json());
			default:
				return undefined;
		}
	}

	// Polling export (wrangler pollExport): the first call pins a bookmark and answers "active";
	// a poll with `current_bookmark` completes with a signed URL served by this same server.
	function exportDatabase(db: D1DatabaseState, body: Record<string, unknown>): Reply {
		if (body.output_format !== "polling") {
			return fail(400, {
				code: 7400,
				message: "The request is malformed: output_format must be 'polling'",
			});
		}
		const current = body.current_bookmark;
		if (typeof current !== "string") {
			// workers-sdk#6305: "D1 Export error: cannot export databases with Virtual Tables (fts5)";
			// #9519: the database then refuses every query for a long time.
			if (hasVirtualTables(db)) {
				exportBlockedUntil.set(db.uuid, now() + limits.exportBlockMs);
				return ok({
					success: false,
					type: "export",
					at_bookmark: db.currentBookmark(),
					status: "error",
					error: "cannot export databases with Virtual Tables (fts5)",
					messages: [],
				});
			}
			activeExports.add(db.uuid);
			const atBookmark = db.currentBookmark();
			exports.set(`${db.uuid}/${atBookmark}`, {
				uuid: db.uuid,
				options: (body.dump_options ?? {}) as DumpOptions,
			});
			return ok({
				success: true,
				type: "export",
				at_bookmark: atBookmark,
				status: "active",
				messages: [`Generating ${db.uuid}-${atBookmark}.sql`],
			});
		}
		const job = exports.get(`${db.uuid}/${current}`);
		const snapshot = db.snapshotAt(current);
		if (job === undefined || snapshot === undefined) {
			return fail(400, {
				code: 7400,
				message: `The request is malformed: no export at bookmark ${current}`,
			});
		}
		activeExports.delete(db.uuid);
		const filename = `${db.uuid}-${current}.sql`;
		const token = randomBytes(16).toString("hex");
		signedExports.set(token, { filename, sql: dumpSnapshot(snapshot, job.options) });
		return ok({
			success: true,
			type: "export",
			at_bookmark: current,
			status: "complete",
			result: { filename, signed_url: `${origin}/__signed/export/${token}/${filename}` },
			messages: ["Uploaded part 1", `Export complete: ${filename}`],
		});
	}

	// Import (wrangler executeRemotely --file): init → PUT upload_url → ingest → poll.
	function importDatabase(db: D1DatabaseState, body: Record<string, unknown>): Reply {
		const etag = typeof body.etag === "string" ? body.etag : "";
		switch (body.action) {
			case "init": {
				const filename = `${etag}.sql`;
				const token = randomBytes(16).toString("hex");
				uploads.set(token, { uuid: db.uuid, filename });
				return ok({
					success: true,
					type: "import",
					filename,
					upload_url: `${origin}/__signed/import/${token}/${filename}`,
				});
			}
			case "ingest": {
				const upload = [...uploads.values()].find(
					(u) => u.uuid === db.uuid && u.filename === body.filename && u.content !== undefined,
				);
				if (upload?.content === undefined) {
					return fail(400, {
						code: 7400,
						message: `The request is malformed: ${String(body.filename)} was not uploaded`,
					});
				}
				const sql = upload.content.toString("utf8");
				let response: Record<string, unknown>;
				try {
					const results = db.execute([{ sql }], { via: "import" });
					const finalBookmark = db.currentBookmark();
					response = {
						success: true,
						type: "import",
						status: "complete",
						at_bookmark: finalBookmark,
						messages: [`Imported ${results.length} queries`],
						result: {
							success: true,
							num_queries: results.length,
							final_bookmark: finalBookmark,
							meta: sumMeta(results, db.sizeBytes()),
						},
					};
				} catch (error) {
					if (!(error instanceof D1Error)) throw error;
					response = {
						success: true,
						type: "import",
						status: "error",
						at_bookmark: db.currentBookmark(),
						error: error.message,
						errors: [error.message],
						messages: [],
					};
				}
				imports.set(`${db.uuid}/${String(response.at_bookmark)}`, { uuid: db.uuid, response });
				return ok(response);
			}
			case "poll": {
				const job = imports.get(`${db.uuid}/${String(body.current_bookmark)}`);
				if (job === undefined) {
					return fail(400, { code: 7400, message: "The request is malformed: unknown import" });
				}
				return ok(job.response);
			}
			default:
				return fail(400, {
					code: 7400,
					message: "The request is malformed: unknown import action",
				});
		}
	}

	function routeApi(ctx: RouteContext): Reply | undefined {
		const { method, segments: s } = ctx;
		const path = s.join("/");
		if (
			method === "GET" &&
			(path === "user/tokens/verify" ||
				(s[0] === "accounts" && s[2] === "tokens" && s[3] === "verify" && s.length === 4))
		) {
			return ok(
				{ id: createHash("md5").update(options.token).digest("hex"), status: "active" },
				{ messages: [{ code: 10000, message: "This API Token is valid and active", type: null }] },
			);
		}
		if (method === "GET" && path === "user") {
			return ok({
				id: "00000000000000000000000000000001",
				email: "loopback@example.com",
				first_name: null,
				last_name: null,
			});
		}
		if (method === "GET" && path === "accounts") return paginate([account], ctx.params);
		if (method === "GET" && path === "memberships") {
			return paginate(
				[
					{
						id: "membership-1",
						status: "accepted",
						account: { id: account.id, name: account.name },
						roles: ["Administrator"],
					},
				],
				ctx.params,
			);
		}
		if (s[0] === "accounts" && s.length === 2 && method === "GET") return ok(account);
		if (s[0] === "accounts" && s[2] === "d1" && s[3] === "database")
			return routeD1(ctx, s.slice(4));
		return undefined;
	}

	function routeSigned(method: string, segments: string[], body: Buffer): Reply | undefined {
		const [, kind, token = ""] = segments;
		if (kind === "export" && method === "GET") {
			const file = signedExports.get(token);
			if (file === undefined) return { status: 404, body: "NoSuchKey" };
			return { status: 200, body: file.sql, headers: { "content-type": "application/sql" } };
		}
		if (kind === "import" && method === "PUT") {
			const upload = uploads.get(token);
			if (upload === undefined) return { status: 404, body: "NoSuchUpload" };
			upload.content = body;
			const md5 = createHash("md5").update(body).digest("hex");
			return { status: 200, body: "", headers: { etag: `"${md5}"` } };
		}
		return undefined;
	}

	function send(res: ServerResponse, reply: Reply): void {
		const text = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
		res.writeHead(reply.status, {
			"content-type": "application/json",
			...reply.headers,
			"content-length": Buffer.byteLength(text),
		});
		res.end(text);
	}

	async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const body = await readBody(req);
		const url = new URL(req.url ?? "/", "http://127.0.0.1");
		const method = (req.method ?? "GET").toUpperCase();
		const underApi = url.pathname === API_BASE_PATH || url.pathname.startsWith(`${API_BASE_PATH}/`);
		const path = underApi ? url.pathname.slice(API_BASE_PATH.length) || "/" : url.pathname;
		const text = body.length > 0 ? body.toString("utf8") : undefined;
		// Secret values (Workers uploads, secret bodies) never reach the request log or fault records.
		const logged =
			text === undefined ? undefined : workers.redact(path, req.headers["content-type"], text);
		const record: RequestRecord = { method, path, query: url.search, body: logged, status: 0 };
		requests.push(record);
		const request: FaultRequest = { method, path, query: url.search, body: logged };
		const fault = faults.take(request);
		if (fault !== undefined) record.fault = fault.kind;
		if (fault?.kind === "reset-before") {
			req.socket.destroy();
			return;
		}
		if (fault?.kind === "status") {
			const reply = faultReply(fault);
			record.status = reply.status;
			send(res, reply);
			return;
		}
		const arrivedGeneration = new Map(generation);
		if (fault?.kind === "delay") await sleep(fault.ms);
		if (underApi) {
			const limited = checkRateLimit();
			if (limited !== undefined) {
				record.status = limited.status;
				send(res, limited);
				return;
			}
		}

		const segments = path.split("/").filter(Boolean);
		let reply: Reply | undefined;
		try {
			if (!underApi) {
				reply = segments[0] === "__signed" ? routeSigned(method, segments, body) : undefined;
			} else {
				reply = workers.usesAssetsJwt(segments)
					? workers.authenticateAssetsUpload(req.headers.authorization)
					: authenticate(req, segments);
				if (reply === undefined && segments[0] === "accounts" && segments[2] === "workers") {
					reply = await workers.route({
						method,
						segments,
						params: url.searchParams,
						body,
						contentType: req.headers["content-type"],
						authorization: req.headers.authorization,
					});
				} else if (reply === undefined) {
					const json = () => {
						try {
							const parsed: unknown = text === undefined ? {} : JSON.parse(text);
							if (parsed === null || typeof parsed !== "object") throw new Error("not an object");
							return parsed as Record<string, unknown>;
						} catch {
							throw new D1Error("The request is malformed: body is not valid JSON", { code: 7400 });
						}
					};
					reply = routeApi({
						method,
						segments,
						params: url.searchParams,
						body,
						json,
						arrivedGeneration,
					});
				}
			}
		} catch (error) {
			if (!(error instanceof D1Error)) throw error;
			reply = fail(error.status, { code: error.code, message: error.message });
		}
		if (reply === undefined) {
			const line = `${method} ${url.pathname}${url.search}`;
			unknownRoutes.push(line);
			log(`[cloudflare-api] unknown route: ${line}`);
			reply = fail(404, {
				code: 7003,
				message: `Could not route to ${path}, perhaps your object identifier is invalid?`,
			});
		}
		if (fault?.kind === "reset-after") {
			req.socket.destroy();
			return;
		}
		record.status = reply.status;
		send(res, reply);
	}

	const server: Server = createServer((req, res) => {
		handle(req, res).catch((error: unknown) => {
			const message = error instanceof Error ? error.message : String(error);
			if (!res.headersSent && !res.destroyed) {
				send(res, fail(500, { code: 7500, message: `internal error: ${message}` }));
			}
		});
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => resolve());
	});
	const { port } = server.address() as AddressInfo;
	origin = `http://127.0.0.1:${port}`;

	return {
		url: `${origin}${API_BASE_PATH}`,
		origin,
		addDatabase,
		database: (uuid) => stateOf(uuid).db,
		serialize: (uuid) => stateOf(uuid).serialize(),
		currentBookmark: (uuid) => stateOf(uuid).currentBookmark(),
		requests,
		unknownRoutes,
		workers: workers.control,
		faults,
		setFaultHook: (hook) => faults.setHook(hook),
		close: async () => {
			const closed = new Promise<void>((resolve) => server.close(() => resolve()));
			server.closeAllConnections();
			await closed;
			for (const db of databases.values()) db.close();
		},
	};
}
