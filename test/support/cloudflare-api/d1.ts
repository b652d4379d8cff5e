// The D1 database routes: list, create, get, delete, query and raw, dispatching Time Travel and
// export/import to their modules.
import { randomUUID } from "node:crypto";
import {
	type D1DatabaseState,
	D1Error,
	type D1Query,
	type D1StatementResult,
} from "../d1-database.ts";
import { fail, ok, paginate, type Reply, transientReply } from "./envelope.ts";
import { exportDatabase, importDatabase } from "./export-import.ts";
import { D1_TRANSIENT_ERRORS } from "./options.ts";
import type { LoopbackState, RouteContext } from "./state.ts";
import { routeBookmark, routeRestore } from "./time-travel.ts";

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

// A query: refused while an export holds the database (workers-sdk#9519), cancelled when a
// restore happened while it was in flight (developers.cloudflare.com/d1/reference/time-travel:
// "restoring a database ... will cancel any in-flight queries"), failed as a reset past the
// 30 s request limit with nothing committed (the limit is per request, the whole batch).
function runQuery(
	state: LoopbackState,
	db: D1DatabaseState,
	ctx: RouteContext,
	toResult: (r: D1StatementResult) => unknown,
): Reply {
	const { activeExports, exportBlockedUntil, now, generation, limits } = state;
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

export function routeD1(
	state: LoopbackState,
	ctx: RouteContext,
	rest: string[],
): Reply | undefined {
	const { databases, findDatabase, addDatabase, describeDatabase, stateOf } = state;
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
			return ok({ ...describeDatabase(stateOf(uuid)), created_in_region: "WEUR" });
		}
		return undefined;
	}
	const [id = "", action, sub] = rest.map(decodeURIComponent);
	// By UUID; by name only to describe it, the one use wrangler makes of a name (src/d1/utils.ts
	// getDatabaseByNameOrBinding: GET /d1/database/:name?fields=uuid,name for a binding without id).
	const db = method === "GET" && action === undefined ? findDatabase(id) : databases.get(id);
	if (db === undefined) {
		return fail(404, { code: 7404, message: `The database ${id} could not be found` });
	}
	const route = `${method} ${[action, sub].filter(Boolean).join("/")}`;
	switch (route) {
		case "GET ": {
			const fields = [...params.getAll("fields"), ...params.getAll("fields[]")]
				.flatMap((f) => f.split(","))
				.filter(Boolean);
			const info = describeDatabase(db);
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
			return runQuery(state, db, ctx, toQueryResult);
		case "POST raw":
			return runQuery(state, db, ctx, toRawResult);
		case "GET time_travel/bookmark":
			return routeBookmark(state, db, params);
		case "POST time_travel/restore":
			return routeRestore(state, db, params);
		case "POST export":
			return exportDatabase(state, db, ctx.json());
		case "POST import":
			return importDatabase(state, db, ctx.json());
		default:
			return undefined;
	}
}
