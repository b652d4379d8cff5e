// D1 export and import as wrangler drives them (pollExport; executeRemotely --file), with the
// signed URLs this same server answers.
import { createHash, randomBytes } from "node:crypto";
import {
	type D1DatabaseState,
	D1Error,
	type D1Meta,
	type D1StatementResult,
	type DumpOptions,
	dumpSnapshot,
} from "../d1-database.ts";
import { fail, ok, type Reply } from "./envelope.ts";
import type { LoopbackState } from "./state.ts";

const hasVirtualTables = (db: D1DatabaseState) =>
	db.db
		.prepare(
			"SELECT 1 FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'",
		)
		.get() !== undefined;

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

// Polling export (wrangler pollExport): the first call pins a bookmark and answers "active";
// a poll with `current_bookmark` completes with a signed URL served by this same server.
export function exportDatabase(
	state: LoopbackState,
	db: D1DatabaseState,
	body: Record<string, unknown>,
): Reply {
	const { exportBlockedUntil, now, limits, activeExports, exports, signedExports, origin } = state;
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
export function importDatabase(
	state: LoopbackState,
	db: D1DatabaseState,
	body: Record<string, unknown>,
): Reply {
	const { uploads, origin, imports } = state;
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

export function routeSigned(
	state: LoopbackState,
	method: string,
	segments: string[],
	body: Buffer,
): Reply | undefined {
	const { signedExports, uploads } = state;
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
