import { createHash } from "node:crypto";
import { D1ApiError } from "../errors.ts";
import type { QueryOptions, SqlExecutor, StatementResult } from "../migrations/executor.ts";

export type { QueryOptions, SqlExecutor, StatementResult } from "../migrations/executor.ts";

export interface D1ClientOptions {
	apiToken: string;
	accountId: string;
	/** The database's UUID; without it, `lookup` names the database to find by name first. */
	databaseId?: string;
	/** A binding with no database_id (wrangler's auto-provisioning): the name to look its UUID up by. */
	lookup?: { name: string; missing: () => Error };
	/** `CLOUDFLARE_API_BASE_URL`, e.g. https://api.cloudflare.com/client/v4 */
	baseURL?: string;
	/** Per request; a request past it has no clear answer (see isAmbiguous). */
	timeoutMs?: number;
	/** Retries for reads only; a write is never retried here. */
	readRetries?: number;
}

export interface Bookmark {
	bookmark: string;
}

/** A Cloudflare API answer that is not 2xx: its status, envelope and headers. */
export class ApiFailure extends Error {
	readonly status: number;
	readonly errors: { code?: number; message?: string }[];
	readonly headers: Headers;
	constructor(status: number, body: unknown, headers: Headers) {
		const errors = Array.isArray((body as { errors?: unknown })?.errors)
			? ((body as { errors: { code?: number; message?: string }[] }).errors ?? [])
			: [];
		super(errors[0]?.message ?? `HTTP ${status}`);
		this.name = "ApiFailure";
		this.status = status;
		this.errors = errors;
		this.headers = headers;
	}
}

/** No answer came back (refused, reset, timed out, or a body that is not the API's JSON). */
export class NoAnswer extends Error {
	constructor(message: string, options?: { cause?: unknown }) {
		super(message, options);
		this.name = "NoAnswer";
	}
}

// What the SDK retried for a read (cloudflare v7 client.mjs shouldRetry): the server's
// x-should-retry first, then 408, 409, 429 and 5xx.
const shouldRetry = (failure: ApiFailure) => {
	const header = failure.headers.get("x-should-retry");
	if (header === "true" || header === "false") return header === "true";
	const { status } = failure;
	return status === 408 || status === 409 || status === 429 || status >= 500;
};

/**
 * Before retry `n` (0-based) of a read, as the SDK waited (client.mjs retry delay): Retry-After
 * (-ms) when under a minute, else 0.5 s · 2ⁿ up to 8 s, less up to 25 % jitter.
 */
export function readRetryDelayMs(n: number, headers: Headers | undefined, random = Math.random) {
	const ms = Number(headers?.get("retry-after-ms"));
	if (Number.isFinite(ms) && ms > 0 && ms < 60_000) return ms;
	const after = parseRetryAfter(headers?.get("retry-after"));
	if (after !== undefined && after < 60_000) return after;
	return Math.min(500 * 2 ** n, 8000) * (1 - random() * 0.25);
}

const DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4";

/**
 * D1 over the Cloudflare REST API (developers.cloudflare.com/api/resources/d1): plain fetch, the
 * `{ success, errors, messages, result }` envelope, Bearer token. One small client instead of
 * the SDK, whose import of every API resource cost more than all the requests of a migrate.
 */
export class D1Client implements SqlExecutor {
	readonly accountId: string;
	/** Where requests go, named in every "no answer" error. */
	readonly baseURL: string;
	#token: string;
	#timeoutMs: number;
	#readRetries: number;
	#requests = 0;
	#databaseId: string | undefined;
	#lookup: D1ClientOptions["lookup"];
	#resolving: Promise<string> | undefined;

	constructor(options: D1ClientOptions) {
		if (!options.databaseId && !options.lookup)
			throw new Error("D1Client needs databaseId or lookup");
		this.#databaseId = options.databaseId;
		this.#lookup = options.lookup;
		this.accountId = options.accountId;
		this.baseURL = options.baseURL ?? DEFAULT_BASE_URL;
		this.#token = options.apiToken;
		this.#timeoutMs = options.timeoutMs ?? 60_000;
		this.#readRetries = options.readRetries ?? 2;
	}

	/** The database's UUID: from the config, or once looked up by name (undefined until then). */
	get databaseId(): string | undefined {
		return this.#databaseId;
	}

	#url(action: string, id = this.#databaseId ?? ""): string {
		return `${this.baseURL.replace(/\/+$/, "")}/accounts/${this.accountId}/d1/database/${encodeURIComponent(id)}${action ? `/${action}` : ""}`;
	}

	/**
	 * The UUID of a binding that has none in the config, as wrangler finds it (src/d1/utils.ts
	 * getDatabaseByNameOrBinding): GET /accounts/:account/d1/database/:name?fields=uuid,name, once.
	 * A 404 is the `missing` error (the database was never created or provisioned).
	 */
	async #resolveId(): Promise<string> {
		if (this.#databaseId) return this.#databaseId;
		const lookup = this.#lookup as NonNullable<D1ClientOptions["lookup"]>;
		this.#resolving ??= this.#read<{ uuid?: string }>(
			`${this.#url("", lookup.name)}?fields=uuid%2Cname`,
			"lookup",
		).then(
			(found) => {
				if (!found?.uuid) throw new D1ApiError(`D1 returned no uuid for ${lookup.name}`);
				this.#databaseId = found.uuid;
				return found.uuid;
			},
			(error: unknown) => {
				this.#resolving = undefined;
				throw error instanceof D1ApiError && error.status === 404 ? lookup.missing() : error;
			},
		);
		return this.#resolving;
	}

	/** How many HTTP requests this client has started (for reports and benchmarks). */
	get requestCount(): number {
		return this.#requests;
	}

	/** One API call; its envelope's `result`. Reads are retried as the API's clients do; writes never. */
	async #call<T>(
		action: string,
		{
			method = "POST",
			body,
			query = {},
			write,
		}: {
			method?: "GET" | "POST";
			body?: unknown;
			query?: Record<string, string | undefined>;
			write: boolean;
		},
	): Promise<T> {
		await this.#resolveId();
		const search = new URLSearchParams(
			Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined),
		).toString();
		const url = `${this.#url(action)}${search ? `?${search}` : ""}`;
		if (!write) return this.#read<T>(url, action, method, body);
		try {
			return await this.#send<T>(url, method, body);
		} catch (error) {
			throw toD1ApiError(error, action, this.#url(action));
		}
	}

	/** A read: retried as the API's clients do. */
	async #read<T>(url: string, action: string, method = "GET", body?: unknown): Promise<T> {
		const shown = url.replace(/\?.*$/, "");
		for (let retry = 0; ; retry++) {
			try {
				return await this.#send<T>(url, method, body);
			} catch (error) {
				if (retry >= this.#readRetries || isUnresolved(error))
					throw toD1ApiError(error, action, shown);
				if (error instanceof ApiFailure && !shouldRetry(error))
					throw toD1ApiError(error, action, shown);
				if (!(error instanceof ApiFailure) && !(error instanceof NoAnswer)) throw error;
				await sleep(
					readRetryDelayMs(retry, error instanceof ApiFailure ? error.headers : undefined),
				);
			}
		}
	}

	/** One HTTP request: ApiFailure for a non-2xx answer, NoAnswer when none (or no JSON) came. */
	async #send<T>(url: string, method: string, body: unknown): Promise<T> {
		this.#requests++;
		let response: Response;
		let text: string;
		try {
			response = await fetch(url, {
				method,
				headers: {
					authorization: `Bearer ${this.#token}`,
					accept: "application/json",
					...(body === undefined ? {} : { "content-type": "application/json" }),
				},
				body: body === undefined ? undefined : JSON.stringify(body),
				signal: AbortSignal.timeout(this.#timeoutMs),
			});
			text = await response.text();
		} catch (error) {
			const timedOut = (error as Error)?.name === "TimeoutError";
			throw new NoAnswer(timedOut ? "Request timed out." : "Connection error.", { cause: error });
		}
		let parsed: unknown;
		try {
			parsed = JSON.parse(text);
		} catch {
			if (response.ok) throw new NoAnswer(`HTTP ${response.status} with a body that is not JSON`);
			parsed = undefined;
		}
		if (!response.ok) throw new ApiFailure(response.status, parsed, response.headers);
		return (parsed as { result: T }).result;
	}

	async query(sql: string, options: QueryOptions = {}): Promise<StatementResult[]> {
		const result = await this.#call<
			{ results?: Record<string, unknown>[]; success?: boolean; meta?: StatementResult["meta"] }[]
		>("query", {
			body: { sql, ...(options.params ? { params: options.params } : {}) },
			write: options.write === true,
		});
		return (result ?? []).map((r) => ({
			results: r.results ?? [],
			success: r.success !== false,
			meta: r.meta,
		}));
	}

	async getBookmark(timestamp?: string): Promise<string> {
		const response = await this.#call<{ bookmark?: string } | null>("time_travel/bookmark", {
			method: "GET",
			query: { timestamp },
			write: false,
		});
		if (!response?.bookmark) throw new D1ApiError("D1 returned no Time Travel bookmark");
		return response.bookmark;
	}

	async restore(
		bookmark: string,
	): Promise<{ bookmark?: string; previousBookmark?: string; message?: string }> {
		const response = await this.#call<{
			bookmark?: string;
			previous_bookmark?: string;
			message?: string;
		} | null>("time_travel/restore", { query: { bookmark }, write: true });
		return {
			bookmark: response?.bookmark,
			previousBookmark: response?.previous_bookmark,
			message: response?.message,
		};
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
		type ImportResponse = {
			upload_url?: string;
			filename?: string;
			status?: string;
			at_bookmark?: string;
			error?: string;
			result?: { final_bookmark?: string };
		};
		const call = (body: Record<string, unknown>) =>
			this.#call<ImportResponse>("import", { body, write: true });
		const init = await call({ action: "init", etag });
		if (!init?.upload_url || !init.filename)
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
			const response = await this.#call<{
				status?: string;
				error?: string;
				at_bookmark?: string;
				result?: { signed_url?: string };
			}>("export", {
				body: {
					output_format: "polling",
					...(currentBookmark ? { current_bookmark: currentBookmark } : {}),
				},
				write: false,
			});
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
		// Ctrl-C before the pause began: stop now, not after it.
		if (signal?.aborted) {
			reject(signal.reason);
			return;
		}
		const onAbort = () => {
			clearTimeout(timer);
			reject(signal?.reason);
		};
		// The listener goes with the pause: a long lock wait polls on one signal hundreds of times.
		const timer = setTimeout(() => {
			signal?.removeEventListener("abort", onAbort);
			resolve();
		}, ms);
		signal?.addEventListener("abort", onAbort, { once: true });
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
	// A host name that does not resolve: no request left, and trying again in seconds cannot help.
	if (error.unsent) return false;
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
	if (error instanceof NoAnswer) {
		return new D1ApiError(
			`D1 ${operation}: no answer from the API${url ? ` at ${url}` : ""} (${error.message.replace(/\.$/, "")}${causeText(error)})${isUnresolved(error) ? ` — the host name does not resolve: check the network and DNS${url && !url.startsWith(DEFAULT_BASE_URL) ? " and CLOUDFLARE_API_BASE_URL" : ""}` : ""}`,
			{ cause: undefined, unsent: isUnresolved(error) },
		);
	}
	if (error instanceof ApiFailure) {
		const first = error.errors[0];
		const status = error.status;
		const detail = first?.message ?? error.message;
		if (status === 429) {
			const retryAfterMs = parseRetryAfter(error.headers.get("retry-after") ?? undefined);
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

// fetch's "fetch failed" keeps the reason (ECONNREFUSED, ENOTFOUND) in its cause (undici
// lib/web/fetch/index.js: a TypeError whose cause is the network error).
const causeCode = (error: Error): string | undefined => {
	const cause = error.cause as { code?: string; cause?: { code?: string } } | undefined;
	return cause?.code ?? cause?.cause?.code;
};
function causeText(error: Error): string {
	const code = causeCode(error);
	const message = (error.cause as { message?: string } | undefined)?.message;
	return code ? `: ${code}` : message ? `: ${message}` : "";
}
/**
 * getaddrinfo found no such host (Node's dns ENOTFOUND, EAI_NONAME): the request never left.
 * EAI_AGAIN (a resolver that did not answer in time) stays a failure worth trying again.
 */
const isUnresolved = (error: unknown): boolean =>
	error instanceof NoAnswer && causeCode(error) === "ENOTFOUND";
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
