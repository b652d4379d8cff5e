// A loopback Cloudflare v4 API for D1 that real wrangler (CLOUDFLARE_API_BASE_URL) and the
// `cloudflare` SDK (baseURL) can talk to: envelopes, auth, D1 query/raw/export/import, Time Travel,
// and per-request fault injection. Routes and shapes follow wrangler 4.164's wrangler-dist/cli.js.
// The routes live in cloudflare-api/: auth and accounts, D1, Time Travel, export/import, the
// envelopes; this file starts the server, applies faults and rate limits, and dispatches.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { authenticate, checkRateLimit, routeAccount } from "./cloudflare-api/auth.ts";
import { routeD1 } from "./cloudflare-api/d1.ts";
import { fail, faultReply, type Reply, readBody, send } from "./cloudflare-api/envelope.ts";
import { routeSigned } from "./cloudflare-api/export-import.ts";
import {
	API_BASE_PATH,
	type CloudflareApi,
	type CloudflareApiOptions,
	type RequestRecord,
} from "./cloudflare-api/options.ts";
import { redactPreviewBody } from "./cloudflare-api/previews.ts";
import {
	createLoopbackState,
	type LoopbackState,
	type RouteContext,
} from "./cloudflare-api/state.ts";
import { D1Error } from "./d1-database.ts";
import type { FaultRequest } from "./faults.ts";

export {
	API_BASE_PATH,
	type CloudflareApi,
	type CloudflareApiOptions,
	D1_TRANSIENT_ERRORS,
	type D1DatabaseSpec,
	type D1Limits,
	DEFAULT_D1_LIMITS,
	type RequestRecord,
} from "./cloudflare-api/options.ts";
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function routeApi(state: LoopbackState, ctx: RouteContext): Reply | undefined {
	const s = ctx.segments;
	const account = routeAccount(state, ctx);
	if (account !== undefined) return account;
	if (s[0] === "accounts" && s[2] === "d1" && s[3] === "database")
		return routeD1(state, ctx, s.slice(4));
	return undefined;
}

export async function startCloudflareApi(options: CloudflareApiOptions): Promise<CloudflareApi> {
	const state = createLoopbackState(options);
	const { addDatabase, stateOf } = state;

	async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const { requests, faults, generation, workers, unknownRoutes, log } = state;
		const body = await readBody(req);
		const url = new URL(req.url ?? "/", "http://127.0.0.1");
		const method = (req.method ?? "GET").toUpperCase();
		const underApi = url.pathname === API_BASE_PATH || url.pathname.startsWith(`${API_BASE_PATH}/`);
		const path = underApi ? url.pathname.slice(API_BASE_PATH.length) || "/" : url.pathname;
		const text = body.length > 0 ? body.toString("utf8") : undefined;
		// Secret values (Workers uploads, secret bodies) never reach the request log or fault records.
		const logged =
			text === undefined
				? undefined
				: redactPreviewBody(path, workers.redact(path, req.headers["content-type"], text));
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
			const limited = checkRateLimit(state);
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
				reply = segments[0] === "__signed" ? routeSigned(state, method, segments, body) : undefined;
			} else {
				reply = workers.usesAssetsJwt(segments)
					? workers.authenticateAssetsUpload(req.headers.authorization)
					: authenticate(state, req, segments);
				if (reply === undefined && segments[0] === "accounts" && segments[2] === "workers") {
					reply = await state.previews.route({
						method,
						segments,
						params: url.searchParams,
						body,
						contentType: req.headers["content-type"],
					});
				}
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
					reply = routeApi(state, {
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
	const origin = `http://127.0.0.1:${port}`;
	state.origin = origin;

	return {
		url: `${origin}${API_BASE_PATH}`,
		origin,
		addDatabase,
		database: (uuid) => stateOf(uuid).db,
		serialize: (uuid) => stateOf(uuid).serialize(),
		currentBookmark: (uuid) => stateOf(uuid).currentBookmark(),
		requests: state.requests,
		unknownRoutes: state.unknownRoutes,
		workers: state.workers.control,
		previews: state.previews.control,
		faults: state.faults,
		setFaultHook: (hook) => state.faults.setHook(hook),
		close: async () => {
			const closed = new Promise<void>((resolve) => server.close(() => resolve()));
			server.closeAllConnections();
			await closed;
			for (const db of state.databases.values()) db.close();
		},
	};
}
