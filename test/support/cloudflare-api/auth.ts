// Auth and account routes: token checks as Cloudflare answers them, the verify/user/accounts/
// memberships lookups wrangler makes before a D1 call, and the per-token rate limit.
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { fail, ok, paginate, type Reply, rateLimitReply } from "./envelope.ts";
import type { LoopbackState, RouteContext } from "./state.ts";

// Cloudflare answers 9106 without credentials, 6003/6111 for a malformed header, and our
// choice for a wrong token is 401/9109; a valid token on another account gets 403/10000.
export function authenticate(
	state: LoopbackState,
	req: IncomingMessage,
	segments: string[],
): Reply | undefined {
	const { options } = state;
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
export function checkRateLimit(state: LoopbackState): Reply | undefined {
	const { now, rate, limits } = state;
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

// The token and account lookups (wrangler whoami, requireAuth, the account picker).
export function routeAccount(state: LoopbackState, ctx: RouteContext): Reply | undefined {
	const { options, account } = state;
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
	return undefined;
}
