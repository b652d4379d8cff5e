// The loopback's stand-in for Cloudflare's edge: requests to the Worker's URL are routed to the
// version that would serve them, each version served by its own local `wrangler dev` of the
// build, with that version's vars and its version id in the version metadata binding.
// The loopback API (test/support/workers-api.ts) holds versions and deployments; this reads them.
// A Worker Preview's URL (test/support/cloudflare-api/previews.ts) is served by its latest
// deployment's own `wrangler dev`, on a local copy of the D1 database that deployment binds.
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import path from "node:path";
import { parse } from "jsonc-parser";
import type { LocalApp } from "../app/_app.ts";
import type { PreviewDeployment } from "../support/cloudflare-api/previews.ts";
import type { CloudflareApi } from "../support/cloudflare-api.ts";
import { dumpSnapshot } from "../support/d1-database.ts";
import type { WorkerVersion } from "../support/workers-api.ts";

// developers.cloudflare.com/workers/configuration/versions-and-deployments/version-overrides/:
// `Cloudflare-Workers-Version-Overrides: <worker>="<version id>"`, an RFC 8941 dictionary; applied
// only when the version is in the current deployment, else the request goes by percentages.
export const OVERRIDE_HEADER = "cloudflare-workers-version-overrides";

/** Pure: the version id an override header names for `script`, if it is a valid dictionary entry. */
export function parseOverride(header: string | undefined, script: string): string | undefined {
	if (!header) return undefined;
	for (const member of header.split(",")) {
		const match = /^\s*([a-z*][a-z0-9_\-.*]*)\s*=\s*"([^"\\]*)"\s*(?:;.*)?$/.exec(member);
		if (match?.[1] === script) return match[2];
	}
	return undefined;
}

/** Pure: the version a request without a (valid) override lands on, for a uniform `draw` in [0, 100). */
export function pickByPercentage(
	versions: readonly { version_id: string; percentage: number }[],
	draw: number,
): string | undefined {
	let floor = 0;
	for (const v of versions) {
		floor += v.percentage;
		if (draw < floor) return v.version_id;
	}
	return undefined;
}

export interface EdgeHit {
	versionId: string;
	override: boolean;
	status: number;
	/** The share the version had in the deployment when it answered. */
	percentage: number;
}

export interface Edge {
	/** Base URL of the Worker as the edge serves it, e.g. http://127.0.0.1:PORT */
	url: string;
	hits: EdgeHit[];
	/** Test fault: every version but `except` answers 503 while its share is at least `percentage` (load it cannot take). */
	failAtPercentage(percentage: number | undefined, except?: string): void;
	/** Test fault: the app echoes this secret's value in its health body (an app leaking it). */
	echoSecret(name: string | undefined): void;
	/** Where the edge serves a preview alias (stands in for https://<alias>-<worker>.<sub>.workers.dev). */
	aliasUrl(alias: string): string;
	/** Where the edge serves a Worker Preview (stands in for https://<preview>-<worker>.<sub>.workers.dev). */
	previewUrl(name: string): string;
	/** Versions with a running local server. */
	serving(): string[];
	close(): Promise<void>;
}

interface VersionServer {
	url: string;
	stop: () => Promise<void>;
}

/** What the edge needs of an app: where it lives and how to serve one of its configs (and, for Previews, fill a local D1). */
export type EdgeApp = Pick<LocalApp, "dir" | "start"> &
	Partial<Pick<LocalApp, "wrangler" | "persistDir">>;

/** The app's wrangler config for one version: its plain-text vars, its secrets and its version id. */
function writeVersionConfig(
	app: EdgeApp,
	api: CloudflareApi,
	script: string,
	version: WorkerVersion,
	base?: Record<string, unknown>,
): string {
	const config = structuredClone(
		base ?? (parse(readFileSync(path.join(app.dir, "wrangler.jsonc"), "utf8")) as object),
	) as Record<string, unknown>;
	const vars: Record<string, unknown> = { ...((config.vars as Record<string, unknown>) ?? {}) };
	for (const binding of version.bindings) {
		if (binding.type === "plain_text" && typeof binding.text === "string")
			vars[binding.name] = binding.text;
		if (binding.type === "json") vars[binding.name] = binding.json;
	}
	for (const name of version.secretNames)
		vars[name] = api.workers.secretValue(script, name, version.id) ?? "";
	// Locally, miniflare's version-metadata plugin gives the binding a random id; on Cloudflare it
	// is the version's (developers.cloudflare.com/workers/runtime-apis/bindings/version-metadata/).
	// A JSON var of the same name (wrangler's `vars` accept objects) carries the real one.
	const metadata = config.version_metadata as { binding?: string } | undefined;
	delete config.version_metadata;
	if (metadata?.binding)
		vars[metadata.binding] = {
			id: version.id,
			tag: version.tag ?? "",
			timestamp: version.createdOn,
		};
	config.vars = vars;
	delete config.env;
	const file = `wrangler.version-${version.id}.json`;
	writeFileSync(path.join(app.dir, file), JSON.stringify(config, null, "\t"));
	return file;
}

/** The app's wrangler config for one Preview deployment: its env (vars, secrets, D1) and its id as the version metadata. */
function writePreviewConfig(
	app: EdgeApp,
	api: CloudflareApi,
	script: string,
	deployment: PreviewDeployment,
	base?: Record<string, unknown>,
): string {
	const config = structuredClone(
		base ?? (parse(readFileSync(path.join(app.dir, "wrangler.jsonc"), "utf8")) as object),
	) as Record<string, unknown>;
	const vars: Record<string, unknown> = {};
	const databases: Record<string, unknown>[] = [];
	delete config.version_metadata;
	for (const [name, binding] of Object.entries(deployment.env)) {
		if (binding.type === "plain_text") vars[name] = binding.text;
		if (binding.type === "json") vars[name] = binding.json;
		if (binding.type === "secret_text")
			vars[name] = api.previews.secretValue(script, name, deployment.id) ?? "";
		// As for versions: the binding gets the deployment's own id (miniflare's would be random).
		if (binding.type === "version_metadata")
			vars[name] = {
				id: deployment.id,
				tag: deployment.annotations["workers/tag"] ?? "",
				timestamp: deployment.createdOn,
			};
		// A local copy per deployment (copyPreviewDatabases), so a new push starts from the PR's database as it is.
		if (binding.type === "d1")
			databases.push({
				binding: name,
				database_name: binding.database_name,
				database_id: deployment.id,
			});
	}
	config.vars = vars;
	config.d1_databases = databases;
	delete config.env;
	delete config.previews;
	const file = `wrangler.preview-${deployment.id}.json`;
	writeFileSync(path.join(app.dir, file), JSON.stringify(config, null, "\t"));
	return file;
}

/** The local D1 a Preview deployment reads: a copy of the loopback database it binds, as it is now. */
async function copyPreviewDatabases(
	app: EdgeApp,
	api: CloudflareApi,
	deployment: PreviewDeployment,
	config: string,
) {
	if (!app.wrangler || !app.persistDir) return;
	for (const [name, binding] of Object.entries(deployment.env)) {
		if (binding.type !== "d1") continue;
		const dump = path.join(app.dir, `preview-${deployment.id}-${name}.sql`);
		writeFileSync(dump, dumpSnapshot(api.serialize(String(binding.database_id))));
		await app.wrangler([
			"d1",
			"execute",
			name,
			"--local",
			"--persist-to",
			app.persistDir,
			"--config",
			config,
			"--file",
			dump,
			"--yes",
		]);
	}
}

export async function startEdge(options: {
	api: CloudflareApi;
	script: string;
	app: EdgeApp;
	/** The Worker's config as an object (its environment resolved), read per version; default: the app's wrangler.jsonc. */
	config?: () => Record<string, unknown>;
}): Promise<Edge> {
	const { api, script, app, config } = options;
	const servers = new Map<string, Promise<VersionServer>>();
	const hits: EdgeHit[] = [];
	let failure: { percentage: number; except?: string } | undefined;
	let echoed: string | undefined;
	// Versions a preview alias points at keep their server.
	const aliased = new Set<string>();
	// Worker Preview deployment id → its server (a Preview's latest deployment serves its URL).
	const previewServers = new Map<string, Promise<VersionServer>>();

	const previewServerFor = (deployment: PreviewDeployment) => {
		let server = previewServers.get(deployment.id);
		if (!server) {
			const file = writePreviewConfig(app, api, script, deployment, config?.());
			server = copyPreviewDatabases(app, api, deployment, file).then(() =>
				app.start({ config: file }),
			);
			previewServers.set(deployment.id, server);
			server.catch(() => previewServers.delete(deployment.id));
		}
		return server;
	};

	/** Servers of Preview deployments that no longer serve a Preview URL (replaced or deleted) stop. */
	const retirePreviews = async (current: Set<string>) => {
		for (const [id, server] of previewServers) {
			if (current.has(id)) continue;
			previewServers.delete(id);
			await (await server.catch(() => undefined))?.stop();
		}
	};

	/** A Preview URL "always serves the latest deployment" (developers.cloudflare.com/workers/previews/); a deleted Preview's answers nothing. */
	async function handlePreview(
		req: IncomingMessage,
		res: ServerResponse,
		name: string,
		rest: string,
	) {
		const latest = new Set(
			api.previews
				.previews(script)
				.map((p) => p.deployments.at(-1)?.id)
				.filter((id): id is string => id !== undefined),
		);
		await retirePreviews(latest);
		const deployment = api.previews.preview(script, name)?.deployments.at(-1);
		if (!deployment) {
			res.writeHead(404, { "content-type": "text/plain" }).end("error code: 1042");
			return;
		}
		const server = await previewServerFor(deployment);
		const upstream = await fetch(new URL(rest, server.url), {
			method: req.method,
			headers: { accept: req.headers.accept ?? "*/*" },
		});
		hits.push({
			versionId: deployment.id,
			override: false,
			status: upstream.status,
			percentage: 0,
		});
		res.writeHead(upstream.status, {
			"content-type": upstream.headers.get("content-type") ?? "text/plain",
		});
		res.end(await upstream.text());
	}

	const serverFor = (version: WorkerVersion) => {
		let server = servers.get(version.id);
		if (!server) {
			server = app.start({ config: writeVersionConfig(app, api, script, version, config?.()) });
			servers.set(version.id, server);
			server.catch(() => servers.delete(version.id));
		}
		return server;
	};

	/** Versions no longer in the current deployment get no traffic: stop their servers. */
	const retire = async (current: Set<string>) => {
		for (const [id, server] of servers) {
			if (current.has(id) || aliased.has(id)) continue;
			servers.delete(id);
			await (await server.catch(() => undefined))?.stop();
		}
	};

	/** A preview alias URL (https://<alias>-<worker>.<sub>.workers.dev) serves the alias's newest version, outside any deployment. */
	async function handleAlias(
		req: IncomingMessage,
		res: ServerResponse,
		alias: string,
		rest: string,
	) {
		const versionId = api.workers.aliasVersion(script, alias);
		const version = api.workers.versions(script).find((v) => v.id === versionId);
		if (!version) {
			res.writeHead(404, { "content-type": "text/plain" }).end("error code: 1042");
			return;
		}
		aliased.add(version.id);
		const server = await serverFor(version);
		const upstream = await fetch(new URL(rest, server.url), { method: req.method });
		hits.push({ versionId: version.id, override: false, status: upstream.status, percentage: 0 });
		res.writeHead(upstream.status, {
			"content-type": upstream.headers.get("content-type") ?? "text/plain",
		});
		res.end(await upstream.text());
	}

	async function handle(req: IncomingMessage, res: ServerResponse) {
		const alias = /^\/__alias\/([a-z0-9-]+)(\/.*)$/.exec(req.url ?? "");
		if (alias?.[1] && alias[2]) return handleAlias(req, res, alias[1], alias[2]);
		const preview = /^\/__preview\/([a-z0-9-]+)(\/.*)$/.exec(req.url ?? "");
		if (preview?.[1] && preview[2]) return handlePreview(req, res, preview[1], preview[2]);
		const deployment = api.workers.deployments(script)[0];
		if (!deployment) {
			// A workers.dev name with no Worker behind it: Cloudflare answers 404 (error 1042 page).
			res.writeHead(404, { "content-type": "text/plain" }).end("error code: 1042");
			return;
		}
		const current = new Set(deployment.versions.map((v) => v.version_id));
		await retire(current);
		const header = req.headers[OVERRIDE_HEADER];
		const named = parseOverride(Array.isArray(header) ? header.join(",") : header, script);
		const override = named !== undefined && current.has(named);
		const versionId = override ? named : pickByPercentage(deployment.versions, Math.random() * 100);
		const version = api.workers.versions(script).find((v) => v.id === versionId);
		if (!version || !versionId) {
			res.writeHead(500).end("edge: no version to route to");
			return;
		}
		const percentage = deployment.versions.find((v) => v.version_id === versionId)?.percentage ?? 0;
		if (failure && versionId !== failure.except && percentage >= failure.percentage) {
			hits.push({ versionId, override, status: 503, percentage });
			res.writeHead(503, { "content-type": "application/json" }).end(
				JSON.stringify({
					status: "error",
					version: versionId,
					schema: { head: null, expected: null },
					db: "error",
					reason: `overloaded at ${percentage} %`,
				}),
			);
			return;
		}
		const server = await serverFor(version);
		const upstream = await fetch(new URL(req.url ?? "/", server.url), {
			method: req.method,
			headers: { accept: req.headers.accept ?? "*/*" },
		});
		let body = await upstream.text();
		if (echoed !== undefined && upstream.headers.get("content-type")?.includes("json")) {
			const parsed = JSON.parse(body) as Record<string, unknown>;
			parsed.reason = `${String(parsed.reason ?? "")} (config ${echoed}=${api.workers.secretValue(script, echoed, versionId)})`;
			body = JSON.stringify(parsed);
		}
		hits.push({ versionId, override, status: upstream.status, percentage });
		res.writeHead(upstream.status, {
			"content-type": upstream.headers.get("content-type") ?? "text/plain",
			"cache-control": upstream.headers.get("cache-control") ?? "",
		});
		res.end(body);
	}

	const http: Server = createServer((req, res) => {
		handle(req, res).catch((error: unknown) => {
			if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
			res.end(`edge: ${(error as Error).message}`);
		});
	});
	await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", () => resolve()));
	const address = http.address();
	const port = typeof address === "object" && address ? address.port : 0;
	return {
		url: `http://127.0.0.1:${port}`,
		hits,
		failAtPercentage: (percentage, except) => {
			failure = percentage === undefined ? undefined : { percentage, except };
		},
		echoSecret: (name) => {
			echoed = name;
		},
		serving: () => [...servers.keys()],
		aliasUrl: (alias) => `http://127.0.0.1:${port}/__alias/${alias}`,
		previewUrl: (name) => `http://127.0.0.1:${port}/__preview/${name}`,
		close: async () => {
			await new Promise<void>((resolve) => http.close(() => resolve()));
			await retire(new Set());
			await retirePreviews(new Set());
		},
	};
}
