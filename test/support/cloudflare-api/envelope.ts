// The v4 envelope and the replies every route module builds: success and error bodies, the default
// answers of injected faults, rate limits and D1's transient errors, pagination.
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Fault } from "../faults.ts";

export interface CfError {
	code: number;
	message: string;
	error_chain?: CfError[];
}

export interface Reply {
	status: number;
	body: unknown;
	headers?: Record<string, string>;
}

export const ok = (result: unknown, extra: Record<string, unknown> = {}): Reply => ({
	status: 200,
	body: { success: true, errors: [], messages: [], result, ...extra },
});

export const fail = (status: number, ...errors: CfError[]): Reply => ({
	status,
	body: { success: false, errors, messages: [], result: null },
});

// Default envelopes for injected status faults, after the codes Cloudflare actually returns.
export function faultReply(fault: Extract<Fault, { kind: "status" }>): Reply {
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
export function rateLimitReply(remainingMs: number, code = 10100, message?: string): Reply {
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
export const transientReply = (message: string): Reply =>
	fail(500, { code: 7500, message: `D1_ERROR: ${message}` });

export async function readBody(req: IncomingMessage): Promise<Buffer> {
	const chunks: Buffer[] = [];
	for await (const chunk of req) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks);
}

export function paginate<T>(items: T[], params: URLSearchParams): Reply {
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

export function send(res: ServerResponse, reply: Reply): void {
	const text = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
	res.writeHead(reply.status, {
		"content-type": "application/json",
		...reply.headers,
		"content-length": Buffer.byteLength(text),
	});
	res.end(text);
}
