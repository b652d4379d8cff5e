import { createHash } from "node:crypto";
import Cloudflare, { APIConnectionError, APIError } from "cloudflare";
import { D1ApiError } from "../errors.ts";
import type { QueryOptions, SqlExecutor, StatementResult } from "../migrations/executor.ts";

export type { QueryOptions, SqlExecutor, StatementResult } from "../migrations/executor.ts";

export interface D1ClientOptions {
	apiToken: string;
	accountId: string;
	databaseId: string;
	/** `CLOUDFLARE_API_BASE_URL`, e.g. https://api.cloudflare.com/client/v4 */
	baseURL?: string;
	/** Per request; a request past it has no clear answer (see isAmbiguous). */
	timeoutMs?: number;
	/** Retries for reads only; writes are never retried by the SDK. */
	readRetries?: number;
}

export interface Bookmark {
	bookmark: string;
}

/** D1 over the Cloudflare REST API via the official SDK. */
export class D1Client implements SqlExecutor {
	readonly databaseId: string;
	readonly accountId: string;
	#reader: Cloudflare;
	#writer: Cloudflare;
	/** Where requests go, named in every "no answer" error. */
	readonly baseURL: string;
	#requests = 0;

	constructor(options: D1ClientOptions) {
		this.databaseId = options.databaseId;
		this.accountId = options.accountId;
		this.baseURL = options.baseURL ?? "https://api.cloudflare.com/client/v4";
		const common = {
			apiToken: options.apiToken,
			baseURL: options.baseURL,
			timeout: options.timeoutMs ?? 60_000,
			// The SDK's own logging could print request details; keep it off.
			logLevel: "off" as const,
		};
		this.#reader = new Cloudflare({ ...common, maxRetries: options.readRetries ?? 2 });
		// A write retried blindly could apply a migration twice: never let the SDK retry one.
		this.#writer = new Cloudflare({ ...common, maxRetries: 0 });
	}

	#url(action: string): string {
		return `${this.baseURL.replace(/\/+$/, "")}/accounts/${this.accountId}/d1/database/${this.databaseId}/${action}`;
	}

	/** How many HTTP requests this client has started (for reports and benchmarks). */
	get requestCount(): number {
		return this.#requests;
	}

	async query(sql: string, options: QueryOptions = {}): Promise<StatementResult[]> {
		const client = options.write ? this.#writer : this.#reader;
		this.#requests++;
		try {
			const page = await client.d1.database.query(this.databaseId, {
				account_id: this.accountId,
				sql,
				...(options.params ? { params: options.params as string[] } : {}),
			});
			return page.result.map((r) => ({
				results: (r.results ?? []) as Record<string, unknown>[],
				success: r.success !== false,
				meta: r.meta,
			}));
		} catch (error) {
			throw toD1ApiError(error, "query", this.#url("query"));
		}
	}

	async getBookmark(timestamp?: string): Promise<string> {
		this.#requests++;
		try {
			const response = await this.#reader.d1.database.timeTravel.getBookmark(this.databaseId, {
				account_id: this.accountId,
				...(timestamp ? { timestamp } : {}),
			});
			if (!response.bookmark) throw new D1ApiError("D1 returned no Time Travel bookmark");
			return response.bookmark;
		} catch (error) {
			throw toD1ApiError(error, "time_travel/bookmark", this.#url("time_travel/bookmark"));
		}
	}

	async restore(
		bookmark: string,
	): Promise<{ bookmark?: string; previousBookmark?: string; message?: string }> {
		this.#requests++;
		try {
			const response = await this.#writer.d1.database.timeTravel.restore(this.databaseId, {
				account_id: this.accountId,
				bookmark,
			});
			return {
				bookmark: response.bookmark,
				previousBookmark: response.previous_bookmark,
				message: response.message,
			};
		} catch (error) {
			throw toD1ApiError(error, "time_travel/restore", this.#url("time_travel/restore"));
		}
	}

	/**
	 * Imports SQL atomically through D1's import API, as `wrangler d1 execute --file` does:
	 * init (an upload URL for the file's md5), PUT the file, ingest, then poll until it is done.
	 */
	async importSql(
		sql: string,
		options: { pollIntervalMs?: number; timeoutMs?: number } = {},
	): Promise<{ finalBookmark?: string }> {
		const etag = createHash("md5").update(sql).digest("hex");
		const call = async (params: Record<string, unknown>) => {
			this.#requests++;
			try {
				return await this.#writer.d1.database.import(this.databaseId, {
					account_id: this.accountId,
					...params,
				} as Parameters<Cloudflare["d1"]["database"]["import"]>[1]);
			} catch (error) {
				throw toD1ApiError(error, "import", this.#url("import"));
			}
		};
		const init = await call({ action: "init", etag });
		if (!init.upload_url || !init.filename)
			throw new D1ApiError("D1 import: the API gave no upload URL", { status: 200 });
		this.#requests++;
		const put = await fetch(init.upload_url, { method: "PUT", body: sql });
		if (!put.ok)
			throw new D1ApiError(`D1 import upload failed: HTTP ${put.status}`, { status: put.status });
		// The store answers the md5 of what it received: a different one means a damaged upload.
		const stored = put.headers.get("etag")?.replace(/"/g, "");
		if (stored && stored !== etag)
			throw new D1ApiError("D1 import upload was damaged (ETag mismatch); nothing was imported", {
				status: 400,
			});
		let response = await call({ action: "ingest", etag, filename: init.filename });
		const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
		while (response.status !== "complete" && response.status !== "error") {
			if (Date.now() > deadline) throw new D1ApiError("D1 import did not complete in time");
			await sleep(options.pollIntervalMs ?? 1000);
			response = await call({ action: "poll", current_bookmark: response.at_bookmark ?? "" });
		}
		if (response.status === "error") {
			// A refused import is atomic, like a refused query: nothing of it was applied.
			throw new D1ApiError(`D1 import failed: ${response.error ?? "unknown error"}`, {
				status: 400,
			});
		}
		return { finalBookmark: response.result?.final_bookmark ?? response.at_bookmark };
	}

	/** Exports the database as SQL (export API with polling), then downloads the dump. */
	async exportSql(
		options: { pollIntervalMs?: number; timeoutMs?: number; signal?: AbortSignal } = {},
	): Promise<string> {
		const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
		let currentBookmark: string | undefined;
		for (;;) {
			this.#requests++;
			let response: Awaited<ReturnType<Cloudflare["d1"]["database"]["export"]>>;
			try {
				response = await this.#reader.d1.database.export(this.databaseId, {
					account_id: this.accountId,
					output_format: "polling",
					...(currentBookmark ? { current_bookmark: currentBookmark } : {}),
				});
			} catch (error) {
				throw toD1ApiError(error, "export", this.#url("export"));
			}
			if (response.status === "error" || response.error) {
				throw new D1ApiError(`D1 export failed: ${response.error ?? "unknown error"}`);
			}
			const url = response.result?.signed_url;
			if (response.status === "complete" && url) {
				this.#requests++;
				const download = await fetch(url, { signal: options.signal });
				if (!download.ok)
					throw new D1ApiError(`D1 export download failed: HTTP ${download.status}`, {
						status: download.status,
					});
				return download.text();
			}
			currentBookmark = response.at_bookmark ?? currentBookmark;
			if (Date.now() > deadline) throw new D1ApiError("D1 export did not complete in time");
			await sleep(options.pollIntervalMs ?? 1000, options.signal);
		}
	}
}

export const sleep = (ms: number, signal?: AbortSignal) =>
	new Promise<void>((resolve, reject) => {
		const timer = setTimeout(resolve, ms);
		signal?.addEventListener(
			"abort",
			() => {
				clearTimeout(timer);
				reject(signal.reason);
			},
			{ once: true },
		);
	});

/**
 * A 429: Cloudflare's API allows 1,200 requests per 5 minutes and then blocks for minutes
 * (developers.cloudflare.com/fundamentals/api/reference/limits), saying when in `Retry-After`.
 */
export class D1RateLimitError extends D1ApiError {
	/** From `Retry-After` (seconds or an HTTP date); undefined when the API sent none. */
	readonly retryAfterMs: number | undefined;
	constructor(
		message: string,
		details: { d1Code?: number; retryAfterMs?: number; cause?: unknown },
	) {
		super(message, { status: 429, d1Code: details.d1Code, cause: details.cause });
		this.name = "D1RateLimitError";
		this.retryAfterMs = details.retryAfterMs;
	}
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(
	value: string | null | undefined,
	now = Date.now(),
): number | undefined {
	if (value === null || value === undefined || value.trim() === "") return undefined;
	if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
	const at = Date.parse(value);
	return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** "in 90 s (at 12:01:30 UTC)": when a rate-limited caller may try again. */
export function formatRetryAfter(ms: number | undefined, now = Date.now()): string {
	if (ms === undefined) return "in a few minutes (the API sent no Retry-After)";
	const at = new Date(now + ms).toISOString().slice(11, 19);
	return `in ${Math.ceil(ms / 1000)} s (at ${at} UTC)`;
}

/**
 * True when a failed request may or may not have been applied: no response (timeout, reset) or a
 * 5xx (or a 429 without Cloudflare's rate-limit shape). Only a ledger read can tell which. Anything that is not a D1 API error (a TypeError in
 * our own code) is a definite failure: retrying it would only repeat it.
 */
export function isAmbiguous(error: unknown): boolean {
	if (!(error instanceof D1ApiError)) return false;
	// A 429 is the API gateway refusing before D1 runs anything: definite, retried after a wait.
	if (error instanceof D1RateLimitError) return false;
	return error.status === undefined || error.status >= 500 || error.status === 429;
}

/** Worth trying again: no clear answer, or a rate limit (after its Retry-After). */
export const isRetryable = (error: unknown): boolean =>
	isAmbiguous(error) || error instanceof D1RateLimitError;

/** Keeps D1's own error code and message; never includes request headers (the token). */
export function toD1ApiError(error: unknown, operation: string, url?: string): D1ApiError {
	if (error instanceof D1ApiError) return error;
	if (error instanceof APIConnectionError) {
		return new D1ApiError(
			`D1 ${operation}: no answer from the API${url ? ` at ${url}` : ""} (${error.message}${causeText(error)})`,
			{ cause: undefined },
		);
	}
	if (error instanceof APIError) {
		const first = (error.errors as { code?: number; message?: string }[] | undefined)?.[0];
		const status = typeof error.status === "number" ? error.status : undefined;
		const detail = first?.message ?? error.message;
		if (status === 429) {
			const retryAfterMs = parseRetryAfter(
				(error.headers as Headers | undefined)?.get?.("retry-after") ?? undefined,
			);
			return new D1RateLimitError(
				`D1 ${operation} was rate limited by the Cloudflare API (HTTP 429${first?.code ? ` [${first.code}]` : ""}: ${detail}); retry ${formatRetryAfter(retryAfterMs)}. Nothing of this request was applied.`,
				{ d1Code: first?.code, retryAfterMs },
			);
		}
		return new D1ApiError(
			`D1 ${operation} failed${status ? ` (HTTP ${status})` : ""}${first?.code ? ` [${first.code}]` : ""}: ${detail}${hintFor(status, first?.code)}`,
			{ status, d1Code: first?.code },
		);
	}
	// Not the API's answer: a bug or a broken runtime. Kept as it is, so it is never retried.
	throw error;
}

// The SDK's "Connection error." hides the reason (ECONNREFUSED, ENOTFOUND) in its cause.
function causeText(error: Error): string {
	const cause = error.cause as
		| { message?: string; code?: string; cause?: { code?: string } }
		| undefined;
	const code = cause?.code ?? cause?.cause?.code;
	return code ? `: ${code}` : cause?.message ? `: ${cause.message}` : "";
}
function hintFor(status: number | undefined, code: number | undefined): string {
	// Cloudflare answers a token without access to the account with 403 and code 10000 too.
	if (status === 401 || (status !== 403 && (code === 10000 || code === 9109))) {
		return " — check CLOUDFLARE_API_TOKEN (it needs D1 Edit on this account) and CLOUDFLARE_ACCOUNT_ID";
	}
	if (status === 403 || code === 7403) {
		return " — the token has no access to this account or database: check CLOUDFLARE_ACCOUNT_ID and the token's D1 permission";
	}
	if (status === 404 || code === 7404)
		return " — check database_id in the wrangler config and CLOUDFLARE_ACCOUNT_ID";
	return "";
}
